import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { UserRow } from '../../db/schema.js'
import { problem } from '../../errors.js'
import { hashPassword, verifyAgainstDummy, verifyPassword } from '../../lib/passwords.js'
import { securityEvent } from '../../lib/security-events.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The user when `password` is theirs and the account is enabled, else undefined — decided the
     * same way for every way in (API login, token endpoint, web login).
     */
    checkCredentials: (request: FastifyRequest, username: string, password: string, via: 'api' | 'web') => Promise<UserRow | undefined>
    /**
     * Refuses (403 WRONG_CURRENT_PASSWORD) unless `password` is the signed-in user's. Wrong ones
     * count as failed logins of the username, so a stolen access token is no way to guess it.
     */
    confirmCurrentPassword: (request: FastifyRequest, user: UserRow, password: string, action: string) => Promise<void>
  }
}

async function credentialsPlugin (app: FastifyInstance): Promise<void> {
  app.decorate('checkCredentials', async (request: FastifyRequest, username: string, password: string, via: 'api' | 'web') => {
    await app.loginThrottle.check(request, username)
    const user = await app.usersRepository.findByUsername(username)
    if (user === undefined) {
      // Same work and same answer as a wrong password, so responses do not reveal who exists.
      await verifyAgainstDummy(password)
    } else {
      const check = await verifyPassword(user.passwordHash, password)
      if (check.ok && !user.disabled) {
        if (check.needsRehash) await app.usersRepository.replacePasswordHash(user.id, await hashPassword(password))
        securityEvent(request.log, 'auth.login_succeeded', { userId: user.id, ...(via === 'web' ? { reason: 'web' } : {}) })
        return user
      }
    }
    await app.loginThrottle.recordFailure(request, username)
    securityEvent(request.log, 'auth.login_failed', { username, reason: user === undefined ? 'unknown user' : user.disabled ? 'disabled' : 'wrong password' })
    return undefined
  })

  app.decorate('confirmCurrentPassword', async (request: FastifyRequest, user: UserRow, password: string, action: string) => {
    await app.loginThrottle.check(request, user.username)
    if ((await verifyPassword(user.passwordHash, password)).ok) return
    await app.loginThrottle.recordFailure(request, user.username)
    securityEvent(request.log, 'auth.login_failed', { userId: user.id, reason: `wrong current password on ${action}` })
    throw problem('WRONG_CURRENT_PASSWORD', 'The current password is wrong.')
  })
}

export default fp(credentialsPlugin, { name: 'credentials', dependencies: ['repositories', 'login-throttle'] })
