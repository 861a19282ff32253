import type { FastifyInstance } from 'fastify'
import type { Config } from '../../config.js'
import { hashPassword } from '../../lib/passwords.js'
import { securityEvent } from '../../lib/security-events.js'
import { PasswordForgotten, PasswordReset } from '../../schemas/account-security.js'
import { field, formChecker } from '../forms.js'
import { perIpLimit } from './auth.js'

const checkForgotten = formChecker(PasswordForgotten, {
  email: 'Enter the email address of your account, like name@example.com.',
})

const checkReset = formChecker(PasswordReset, {
  new_password: 'Choose a password of 8 to 128 characters.',
})

/**
 * The pages the links in mail lead to, and the form that mails one: verifying an email address,
 * and resetting a forgotten password. None needs a login: the mailed token is the proof.
 */
export default async function accountMailPages (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const repository = app.accountSecurityRepository
  const perIp = perIpLimit(opts.config)

  // Following the link shows a button; only pressing it (a POST) verifies. Mail scanners fetch
  // links but press no buttons, so an address is verified only when a person reading its mail
  // says so: otherwise signing up with someone else's address would get it verified by their
  // scanner. The button's form carries a CSRF token like every other form.
  app.get('/verify-email', async (request, reply) => {
    const token = (request.query as Record<string, string | undefined>).token ?? ''
    return await reply.page('verify-email', { token })
  })

  app.post('/verify-email', { config: perIp }, async (request, reply) => {
    const userId = await repository.verifyEmail(field(request.body, 'token'))
    if (userId === undefined) return await reply.code(400).page('verify-email', { token: '', invalid: true })
    securityEvent(request.log, 'email.verified', { userId, reason: 'web' })
    request.session.flash = 'Your email address is verified.'
    // The account page shows the address's state; without a login, the guard asks for one first.
    return reply.redirect('/app/account', 303)
  })

  app.get('/forgot-password', async (_request, reply) => await reply.page('forgot-password', { email: '', errors: {} }))

  app.post('/forgot-password', { config: perIp }, async (request, reply) => {
    const email = field(request.body, 'email').trim()
    const errors = checkForgotten({ email })
    if (Object.keys(errors).length > 0) return await reply.code(400).page('forgot-password', { email, errors })
    // Refusals (429 for the address, 503 without mail) are error pages; otherwise the same page
    // follows whether or not an account has this address.
    await app.sendPasswordResets(request, email)
    return reply.redirect('/app/forgot-password/sent', 303)
  })

  app.get('/forgot-password/sent', async (_request, reply) => await reply.page('forgot-password-sent'))

  // Showing the form must not spend the token (mail scanners fetch links): only the POST does.
  app.get('/reset-password', async (request, reply) => {
    const token = (request.query as Record<string, string | undefined>).token ?? ''
    const account = token === '' ? undefined : await repository.liveTokenAccount('password_reset', token)
    if (account === undefined) return await reply.code(400).page('reset-password', { invalid: true, errors: {} })
    return await reply.page('reset-password', { token, username: account.username, errors: {} })
  })

  app.post('/reset-password', { config: perIp }, async (request, reply) => {
    const token = field(request.body, 'token')
    const password = field(request.body, 'new_password')
    const account = token === '' ? undefined : await repository.liveTokenAccount('password_reset', token)
    if (account === undefined) return await reply.code(400).page('reset-password', { invalid: true, errors: {} })
    const errors = checkReset({ token, new_password: password })
    if (errors.new_password === undefined && password.toLowerCase() === account.username.toLowerCase()) {
      errors.new_password = 'Choose a password that is not your username.'
    }
    if (Object.keys(errors).length > 0) return await reply.code(400).page('reset-password', { token, username: account.username, errors })
    const userId = await repository.resetPassword(token, await hashPassword(password))
    if (userId === undefined) return await reply.code(400).page('reset-password', { invalid: true, errors: {} })
    app.forgetAuthState(userId)
    securityEvent(request.log, 'password.reset', { userId, reason: 'web' })
    return reply.redirect('/app/login?reason=password_reset', 303)
  })
}
