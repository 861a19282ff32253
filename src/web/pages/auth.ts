import { randomBytes } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import type { Config } from '../../config.js'
import type { UserRow } from '../../db/schema.js'
import { ProblemError } from '../../errors.js'
import { hashPassword } from '../../lib/passwords.js'
import { securityEvent } from '../../lib/security-events.js'
import { secondFactorOf } from '../../lib/two-factor.js'
import { MfaConfirmation } from '../../schemas/account-security.js'
import { Email, Password, Username } from '../../schemas/users.js'
import { field, type FieldErrors, formChecker, localPath } from '../forms.js'
import { SESSION_COOKIE } from '../../repositories/sessions.js'

/** The API's signup rules, as a form: email is optional and an empty field means none. */
const checkSignup = formChecker(Type.Object({ username: Username, password: Password, email: Type.Optional(Email) }), {
  username: 'Choose a username of 3 to 32 letters, digits, dots, dashes or underscores, starting with a letter or digit.',
  password: 'Choose a password of 8 to 128 characters.',
  email: 'Enter an email address like name@example.com, or leave it empty.',
})

declare module 'fastify' {
  interface Session {
    /** A login past its password, waiting for the second factor: the step's mfa token and where to go after. */
    mfaLogin?: { token: string, next: string }
    /**
     * A single sign-on this browser started: the `state` it gave, which the result must bring back
     * (so nobody can finish a sign-in of theirs in your browser), and where to go after.
     */
    singleSignOn?: { state: string, next: string }
  }
}

/** Starts a single sign-on of this browser, ending at the page `done`; the provider's URL. */
export async function startSingleSignOn (app: FastifyInstance, request: FastifyRequest, done: string, next: string, linkUserId: string | null): Promise<string> {
  const state = randomBytes(16).toString('base64url')
  request.session.singleSignOn = { state, next }
  return await app.singleSignOn.begin(request, { redirectUri: done, clientState: state, linkUserId })
}

/**
 * The result of a single sign-on at its page: the `code` (none when linking), or the message of
 * its error; undefined when this browser did not start it (or already finished it).
 */
export function singleSignOnResult (request: FastifyRequest): { next: string, code: string | undefined, error: string | undefined } | undefined {
  const query = request.query as Record<string, string | undefined>
  const started = request.session.singleSignOn
  if (started === undefined || query.state !== started.state) return undefined
  delete request.session.singleSignOn
  const error = query.error === undefined ? undefined : query.error_description ?? 'The sign-in did not succeed.'
  return { next: started.next, code: query.code, error }
}

/** The API's rule for a code (six digits, or a recovery code), as a form. */
const checkSecondFactorCode = formChecker(Type.Object({ code: MfaConfirmation.properties.code }), {
  code: 'Enter the 6-digit code from your authenticator app, or one of your recovery codes.',
})

/** What a form says of a wrong or already used second factor. */
export const wrongCodeMessage = 'This code is wrong or already used. Enter the code your app shows now, or an unused recovery code.'

/** A code as people type it: authenticator apps show `123 456`, recovery codes may be copied with spaces. */
export function typedCode (form: unknown): string {
  return field(form, 'code').replace(/\s+/g, '')
}

const reasons: Record<string, string> = {
  logged_out: 'You are logged out.',
  expired: 'Your session has expired. Log in again to continue.',
  ended: 'Your session has ended. Log in again to continue.',
  password_changed: 'Your password was changed. Log in with the new one.',
  password_reset: 'Your new password is set. Log in with it.',
  mfa_expired: 'That login took too long or had too many wrong codes. Log in again.',
  sso_expired: 'That sign-in took too long, or was not started in this browser. Try again.',
}

/** The API's per-IP limit on its entry points, as route config for the forms that do the same. */
export function perIpLimit (config: Config) {
  return { rateLimit: { max: config.AUTH_RATE_LIMIT_MAX, timeWindow: config.AUTH_RATE_LIMIT_WINDOW * 1000 } }
}

/** Starts the user's session under a new id, so an id planted before login is worth nothing. */
export async function startSession (request: FastifyRequest, user: UserRow): Promise<void> {
  await request.session.regenerate()
  request.session.userId = user.id
  request.session.passwordChangedAt = user.passwordChangedAt.getTime()
}

/** Sign up, log in (with a second step when two-factor is on) and log out. */
export default async function authPages (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const perIp = perIpLimit(opts.config)

  async function loginForm (reply: FastifyReply, data: { username?: string, next: string, errors?: FieldErrors, message?: string | undefined }) {
    const singleSignOn = app.singleSignOn.configured ? opts.config.OIDC_NAME : undefined
    return await reply.page('login', { errors: {}, singleSignOn, ...data })
  }

  app.get('/login', async (request, reply) => {
    const query = request.query as Record<string, string | undefined>
    const next = localPath(query.next ?? '', '/app/tasks')
    if (request.session.userId !== undefined) return reply.redirect(next, 303)
    return await loginForm(reply, { next, message: reasons[query.reason ?? ''] })
  })

  app.post('/login', { config: perIp }, async (request, reply) => {
    const username = field(request.body, 'username').trim()
    const password = field(request.body, 'password')
    const next = localPath(field(request.body, 'next'), '/app/tasks')
    const errors: FieldErrors = {}
    if (username === '' || username.length > 32) errors.username = 'Enter your username.'
    if (password === '' || password.length > 128) errors.password = 'Enter your password.'
    if (Object.keys(errors).length > 0) return await loginForm(reply.code(400), { username, next, errors })
    const user = await app.checkCredentials(request, username, password, 'web')
    if (user === undefined) {
      // One message for both fields: which of the two was wrong is not revealed.
      return await loginForm(reply.code(401), { username, next, errors: { form: 'The username or password is wrong.' } })
    }
    if (user.mfaEnabled) {
      // The password alone does not log in: the session (under a new id, as at login) holds the
      // second step's token, which the code page spends.
      await request.session.regenerate()
      request.session.mfaLogin = { token: await app.accountSecurityRepository.issueMfaLogin(user.id), next }
      return reply.redirect('/app/login/two-factor', 303)
    }
    await startSession(request, user)
    return reply.redirect(next, 303)
  })

  app.post('/login/single-sign-on', { config: perIp }, async (request, reply) => {
    const next = localPath(field(request.body, 'next'), '/app/tasks')
    return reply.redirect(await startSingleSignOn(app, request, '/app/login/single-sign-on', next, null), 303)
  })

  // Where a single sign-on started above ends (the callback, GET /v1/auth/oidc/callback, sends it here).
  app.get('/login/single-sign-on', { config: perIp }, async (request, reply) => {
    const result = singleSignOnResult(request)
    if (result === undefined) return reply.redirect('/app/login?reason=sso_expired', 303)
    const userId = result.code === undefined ? undefined : await app.accountSecurityRepository.redeemOidcLoginCode(result.code)
    const user = userId === undefined ? undefined : await app.usersRepository.findById(userId)
    if (user === undefined || user.disabled) {
      return await loginForm(reply.code(401), { next: result.next, errors: { form: result.error ?? 'The sign-in took too long. Try again.' } })
    }
    // The provider authenticated the user: no local second factor (docs/decisions/0032-openid-connect.md).
    await startSession(request, user)
    return reply.redirect(result.next, 303)
  })

  app.get('/login/two-factor', async (request, reply) => {
    if (request.session.mfaLogin === undefined) return reply.redirect('/app/login', 303)
    return await reply.page('login-two-factor', { errors: {} })
  })

  app.post('/login/two-factor', { config: perIp }, async (request, reply) => {
    const pending = request.session.mfaLogin
    if (pending === undefined) return reply.redirect('/app/login?reason=mfa_expired', 303)
    const code = typedCode(request.body)
    const errors = checkSecondFactorCode({ code })
    if (Object.keys(errors).length > 0) return await reply.code(400).page('login-two-factor', { errors })
    let user: UserRow
    try {
      // Logs the failure, the recovery code used and the login itself, as for the API.
      user = await app.completeSecondFactor(request, pending.token, secondFactorOf(code), 'web')
    } catch (err) {
      if (err instanceof ProblemError && err.code === 'INVALID_MFA_CODE') {
        return await reply.code(401).page('login-two-factor', { errors: { code: wrongCodeMessage } })
      }
      if (err instanceof ProblemError && err.code === 'INVALID_MFA_TOKEN') {
        delete request.session.mfaLogin
        return reply.redirect(`/app/login?${new URLSearchParams({ next: pending.next, reason: 'mfa_expired' }).toString()}`, 303)
      }
      throw err
    }
    await startSession(request, user)
    return reply.redirect(pending.next, 303)
  })

  app.get('/signup', async (request, reply) => {
    if (request.session.userId !== undefined) return reply.redirect('/app/tasks', 303)
    return await reply.page('signup', { values: {}, errors: {} })
  })

  app.post('/signup', { config: perIp }, async (request, reply) => {
    const values = { username: field(request.body, 'username').trim(), email: field(request.body, 'email').trim() }
    const password = field(request.body, 'password')
    const errors = checkSignup({ username: values.username, password, ...(values.email === '' ? {} : { email: values.email }) })
    if (errors.password === undefined && password.toLowerCase() === values.username.toLowerCase()) {
      errors.password = 'Choose a password that is not your username.'
    }
    if (Object.keys(errors).length > 0) return await reply.code(400).page('signup', { values, errors })
    let user: UserRow
    try {
      user = await app.usersRepository.create({ username: values.username, email: values.email === '' ? undefined : values.email, passwordHash: await hashPassword(password) })
    } catch (err) {
      if (err instanceof ProblemError && err.code === 'USERNAME_TAKEN') {
        return await reply.code(409).page('signup', { values, errors: { username: 'This username is taken; choose another.' } })
      }
      throw err
    }
    securityEvent(request.log, 'auth.signup', { userId: user.id, username: user.username })
    await startSession(request, user)
    request.session.flash = `Welcome, ${user.username}! Your account is ready.`
    return reply.redirect('/app/tasks', 303)
  })

  app.post('/logout', async (request, reply) => {
    const userId = request.session.userId
    await request.session.destroy()
    if (userId !== undefined) securityEvent(request.log, 'auth.logout', { userId, reason: 'web' })
    return reply.clearCookie(SESSION_COOKIE, { path: '/app' }).redirect('/app/login?reason=logged_out', 303)
  })
}
