import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import type { Config } from '../../config.js'
import type { UserRow } from '../../db/schema.js'
import { ProblemError } from '../../errors.js'
import { hashPassword } from '../../lib/passwords.js'
import { securityEvent } from '../../lib/security-events.js'
import { Email, Password, Username } from '../../schemas/users.js'
import { field, type FieldErrors, formChecker, localPath } from '../forms.js'
import { SESSION_COOKIE } from '../../repositories/sessions.js'

/** The API's signup rules, as a form: email is optional and an empty field means none. */
const checkSignup = formChecker(Type.Object({ username: Username, password: Password, email: Type.Optional(Email) }), {
  username: 'Choose a username of 3 to 32 letters, digits, dots, dashes or underscores, starting with a letter or digit.',
  password: 'Choose a password of 8 to 128 characters.',
  email: 'Enter an email address like name@example.com, or leave it empty.',
})

const reasons: Record<string, string> = {
  logged_out: 'You are logged out.',
  expired: 'Your session has expired. Log in again to continue.',
  ended: 'Your session has ended. Log in again to continue.',
  password_changed: 'Your password was changed. Log in with the new one.',
}

/** Starts the user's session under a new id, so an id planted before login is worth nothing. */
export async function startSession (request: FastifyRequest, user: UserRow): Promise<void> {
  await request.session.regenerate()
  request.session.userId = user.id
  request.session.passwordChangedAt = user.passwordChangedAt.getTime()
}

/** Sign up, log in and log out. */
export default async function authPages (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts
  // The API's per-IP limits on its entry points, applied to the forms that do the same.
  const perIp = { rateLimit: { max: config.AUTH_RATE_LIMIT_MAX, timeWindow: config.AUTH_RATE_LIMIT_WINDOW * 1000 } }

  async function loginForm (reply: FastifyReply, data: { username?: string, next: string, errors?: FieldErrors, message?: string | undefined }) {
    return await reply.page('login', { errors: {}, ...data })
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
    await startSession(request, user)
    return reply.redirect(next, 303)
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
