import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { SESSION_COOKIE } from '../../repositories/sessions.js'
import type { Config } from '../../config.js'
import accountPages from './account.js'
import activityPages from './activity.js'
import apiKeyPages from './api-keys.js'
import projectPages from './projects.js'
import taskPages from './tasks.js'
import twoFactorPages from './two-factor.js'
import webhookPages from './webhooks.js'

export interface MemberPagesOptions {
  config: Config
}

/** The pages for logged-in users: a guard in front of all of them, then one module per resource. */
export default async function memberPages (app: FastifyInstance, opts: MemberPagesOptions): Promise<void> {
  /**
   * Lets the request through with `request.webUser` set, or sends the visitor to the login page.
   * The user is read on every request, so a disabled account or a password changed elsewhere (the
   * API included) ends the session at once.
   */
  async function requireUser (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const { userId, passwordChangedAt } = request.session
    const user = userId === undefined ? undefined : await app.usersRepository.findById(userId)
    if (user !== undefined && !user.disabled && user.passwordChangedAt.getTime() === passwordChangedAt) {
      request.webUser = user
      return undefined
    }
    let reason: string | undefined
    if (userId !== undefined) {
      reason = 'ended'
      await request.session.destroy()
      reply.clearCookie(SESSION_COOKIE, { path: '/app' })
    } else if (request.cookies[SESSION_COOKIE] !== undefined && request.cookies[SESSION_COOKIE] !== request.session.encryptedSessionId) {
      // A cookie whose session the store no longer has: it expired.
      reason = 'expired'
    }
    const params = new URLSearchParams({ next: request.method === 'GET' ? request.url : '/app/tasks', ...(reason === undefined ? {} : { reason }) })
    return await reply.redirect(`/app/login?${params.toString()}`, 303)
  }

  app.addHook('onRequest', requireUser)

  app.get('', async (_request, reply) => reply.redirect('/app/tasks', 303))

  await app.register(taskPages, { prefix: '/tasks' })
  await app.register(projectPages, { prefix: '/projects' })
  await app.register(activityPages, { prefix: '/activity' })
  await app.register(webhookPages, { prefix: '/webhooks', config: opts.config })
  await app.register(apiKeyPages, { prefix: '/api-keys' })
  await app.register(accountPages, { prefix: '/account', config: opts.config })
  await app.register(twoFactorPages, { prefix: '/account/two-factor', config: opts.config })
}
