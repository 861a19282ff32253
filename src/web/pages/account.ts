import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import type { Config } from '../../config.js'
import { hashPassword } from '../../lib/passwords.js'
import { securityEvent } from '../../lib/security-events.js'
import { RECOVERY_CODE_COUNT } from '../../lib/two-factor.js'
import { Password } from '../../schemas/users.js'
import { field, type FieldErrors, formChecker, localPath, type Refusals, refusedFields } from '../forms.js'
import { SESSION_COOKIE } from '../../repositories/sessions.js'
import { perIpLimit, singleSignOnResult, startSingleSignOn } from './auth.js'
import { ProblemError } from '../../errors.js'

const checkNewPassword = formChecker(Type.Object({ new_password: Password }), {
  new_password: 'Choose a password of 8 to 128 characters.',
})

/** What a form that asks for the current password shows when it is wrong. */
export const wrongCurrentPassword: Refusals = { WRONG_CURRENT_PASSWORD: ['current_password', 'This is not your current password.'] }

/**
 * Your account: your email address and a link to verify it, two-factor's state (its pages are
 * two-factor.ts), and changing the password, which ends every web session and API login of yours.
 */
export default async function accountPages (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const perIp = perIpLimit(opts.config)

  /** `identityError` is the linked identities section's own message, apart from the password form's errors. */
  async function accountPage (request: FastifyRequest, reply: FastifyReply, errors: FieldErrors, identityError?: string) {
    const user = request.webUser!
    const recoveryCodesLeft = user.mfaEnabled ? await app.accountSecurityRepository.unusedRecoveryCodes(user.id) : 0
    const identities = await app.identitiesRepository.list(user.id)
    const singleSignOn = app.singleSignOn.configured ? opts.config.OIDC_NAME : undefined
    return await reply.page('account', { errors, recoveryCodesLeft, recoveryCodeCount: RECOVERY_CODE_COUNT, identities, singleSignOn, identityError })
  }

  app.get('', async (request, reply) => await accountPage(request, reply, {}))

  // Also the button of the "verify your email" banner on every page, which it returns to.
  app.post('/email-verification', { config: perIp }, async (request, reply) => {
    const user = request.webUser!
    // NO_EMAIL (a form from before the address was removed) and MAIL_UNAVAILABLE are error pages.
    await app.sendEmailVerification(request, user)
    request.session.flash = `A verification link is on its way to ${user.email!}. It works for 24 hours.`
    return reply.redirect(localPath(field(request.body, 'return_to'), '/app/account'), 303)
  })

  app.post('/identities/link', { config: perIp }, async (request, reply) => {
    return reply.redirect(await startSingleSignOn(app, request, '/app/account/identities/linked', '/app/account', request.webUser!.id), 303)
  })

  // Where linking ends: the callback (GET /v1/auth/oidc/callback) has linked the identity, or says why not.
  app.get('/identities/linked', async (request, reply) => {
    const result = singleSignOnResult(request)
    if (result === undefined) return await accountPage(request, reply.code(400), {}, 'That sign-in took too long, or was not started here. Try again.')
    if (result.error !== undefined) return await accountPage(request, reply.code(409), {}, result.error)
    request.session.flash = `Linked: you can now sign in with ${opts.config.OIDC_NAME}.`
    return reply.redirect('/app/account', 303)
  })

  app.post('/identities/:id/unlink', async (request, reply) => {
    const user = request.webUser!
    const { id } = request.params as { id: string }
    try {
      const unlinked = /^[0-9a-f-]{36}$/.test(id) && await app.identitiesRepository.unlink(user.id, id)
      if (!unlinked) return await accountPage(request, reply.code(404), {}, 'This identity is not linked to your account.')
    } catch (err) {
      if (err instanceof ProblemError && err.code === 'LAST_WAY_IN') {
        return await accountPage(request, reply.code(409), {}, 'This is your only way to sign in. Set a password first (log out and use "Forgot your password?" with your verified email), or link another identity.')
      }
      throw err
    }
    securityEvent(request.log, 'identity.unlinked', { userId: user.id, reason: 'web' })
    request.session.flash = 'The identity is unlinked.'
    return reply.redirect('/app/account', 303)
  })

  app.post('/password', async (request, reply) => {
    const user = request.webUser!
    const current = field(request.body, 'current_password')
    const next = field(request.body, 'new_password')
    const errors: FieldErrors = checkNewPassword({ new_password: next })
    if (errors.new_password === undefined && next.toLowerCase() === user.username.toLowerCase()) {
      errors.new_password = 'Choose a password that is not your username.'
    }
    // As the API does: a wrong one counts as a failed login of the username.
    Object.assign(errors, await refusedFields(async () => { await app.confirmCurrentPassword(request, user, current, 'password change') }, wrongCurrentPassword))
    if (Object.keys(errors).length > 0) return await accountPage(request, reply.code(400), errors)
    await app.usersRepository.changePassword(user.id, await hashPassword(next))
    app.forgetAuthState(user.id)
    securityEvent(request.log, 'auth.password_changed', { userId: user.id, reason: 'web' })
    await request.session.destroy()
    return reply.clearCookie(SESSION_COOKIE, { path: '/app' }).redirect('/app/login?reason=password_changed', 303)
  })
}
