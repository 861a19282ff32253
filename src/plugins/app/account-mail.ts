import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { UserRow } from '../../db/schema.js'
import { problem } from '../../errors.js'
import { limitReached } from '../external/rate-limit.js'
import { securityEvent } from '../../lib/security-events.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Mails the user a link that verifies their current address; 400 NO_EMAIL without one, 503
     * MAIL_UNAVAILABLE when mail cannot be sent. The same for the API and the pages.
     */
    sendEmailVerification: (request: FastifyRequest, user: UserRow) => Promise<void>
    /**
     * Mails a reset link to every enabled account with this verified address, doing the same work
     * whether or not there is one; 429 past RESETS_PER_EMAIL_PER_HOUR for the address, 503
     * MAIL_UNAVAILABLE when mail cannot be sent. The same for the API and the pages.
     */
    sendPasswordResets: (request: FastifyRequest, email: string) => Promise<void>
  }
}

/** Reset mails one address may be sent per hour, whoever asks. */
export const RESETS_PER_EMAIL_PER_HOUR = 5

/** The account flows that send mail, with their links into the /app pages. */
async function accountMailPlugin (app: FastifyInstance): Promise<void> {
  const repository = app.accountSecurityRepository
  // Per address, whichever client asks: a reset mail cannot be used to flood someone's inbox.
  const addresses = new WeakMap<FastifyRequest, string>()
  const perEmail = app.createRateLimit({
    max: RESETS_PER_EMAIL_PER_HOUR,
    timeWindow: 3_600_000,
    keyGenerator: (request) => `password-forgot:${addresses.get(request)!}`,
  })

  app.decorate('sendEmailVerification', async (request: FastifyRequest, user: UserRow) => {
    app.mailer.assertAvailable()
    const issued = await repository.issueEmailVerification(user.id)
    if (issued === undefined) throw problem('NO_EMAIL', 'Your account has no email address: set one first.')
    app.mailer.sendLater(request, {
      to: issued.email,
      name: 'verify-email',
      data: { username: user.username, email: issued.email, token: issued.token, link: `${app.mailer.linkBase(request)}/app/verify-email?token=${encodeURIComponent(issued.token)}` },
    })
  })

  app.decorate('sendPasswordResets', async (request: FastifyRequest, email: string) => {
    app.mailer.assertAvailable()
    addresses.set(request, email.toLowerCase())
    const limit = await perEmail(request)
    if (!limit.isAllowed && limit.isExceeded) {
      throw limitReached(`Too many reset requests for this address; retry in ${limit.ttlInSeconds} s.`, limit)
    }
    const resets = await repository.issuePasswordResets(email)
    const base = app.mailer.linkBase(request)
    for (const reset of resets) {
      app.mailer.sendLater(request, {
        to: reset.email,
        name: 'reset-password',
        data: { username: reset.username, token: reset.token, link: `${base}/app/reset-password?token=${encodeURIComponent(reset.token)}` },
      })
      securityEvent(request.log, 'password.reset_requested', { userId: reset.userId })
    }
    if (resets.length === 0) securityEvent(request.log, 'password.reset_requested', { reason: 'no enabled account has this verified address: nothing sent' })
  })
}

export default fp(accountMailPlugin, { name: 'account-mail', dependencies: ['repositories', 'mailer', 'rate-limit'] })
