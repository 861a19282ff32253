import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import { hashPassword } from '../../lib/passwords.js'
import { securityEvent } from '../../lib/security-events.js'

/**
 * The first admin comes from the operator: with ADMIN_USERNAME and ADMIN_PASSWORD set, that user
 * is created as an admin when the app is ready, unless a user of that name exists (then it is left
 * exactly as it is, so a restart never resets a password or a role). Safe when several instances
 * start at once: the insert does nothing on a username conflict.
 */
async function adminBootstrapPlugin (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { ADMIN_USERNAME: username, ADMIN_PASSWORD: password } = opts.config
  if (username === undefined || password === undefined) return
  app.addHook('onReady', async () => {
    if (await app.usersRepository.findByUsername(username) !== undefined) return
    const created = await app.usersRepository.createIfAbsent({ username, passwordHash: await hashPassword(password), role: 'admin' })
    if (created) securityEvent(app.log, 'auth.admin_bootstrapped', { username })
  })
}

export default fp(adminBootstrapPlugin, { name: 'admin-bootstrap', dependencies: ['repositories'] })
