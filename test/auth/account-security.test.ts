/**
 * Email verification, password reset and TOTP two-factor through the API, with mail going to a real
 * SMTP server started here and codes computed here with otplib, as an authenticator app would.
 */
import tap from 'tap'
import { generate } from 'otplib'
import { build, createUser, databaseKind, type TestUser, uniqueName } from '../helper.js'
import { buildProbe, createAdmin } from './support.js'
import { PageClient } from '../web/support.js'
import { startMailServer, tokenFrom } from '../mail-server.js'

const PERIOD = 30

/** The code an authenticator shows `stepsFromNow` steps from now. */
async function codeAt (secret: string, stepsFromNow = 0): Promise<string> {
  return await generate({ secret, epoch: Math.floor(Date.now() / 1000) + stepsFromNow * PERIOD })
}

/** Waits until the current step has at least `seconds` left, so that a test's codes share a step. */
async function awayFromStepEdge (seconds = 5): Promise<void> {
  const left = PERIOD - (Math.floor(Date.now() / 1000) % PERIOD)
  if (left < seconds) await new Promise((resolve) => setTimeout(resolve, left * 1000 + 200))
}

tap.test('account security', async (t) => {
  const mail = await startMailServer()
  t.teardown(() => mail.close())
  const app = await build(t, { SMTP_URL: mail.url, MAIL_FROM: 'Tasks <tasks@example.test>', PUBLIC_URL: 'https://tasks.example.test', AUTH_RATE_LIMIT_MAX: '1000', LOGIN_FAILURES_MAX: '7', WEBHOOK_DELIVERY: 'false' })

  const as = (user: TestUser) => ({ authorization: `Bearer ${user.accessToken}` })
  const me = async (user: TestUser) => (await app.inject({ method: 'GET', url: '/v1/users/me', headers: as(user) })).json<{ email: string | null, email_verified: boolean, mfa_enabled: boolean }>()
  const withEmail = async (prefix: string) => {
    const user = await createUser(app, prefix)
    const email = `${user.username}@example.test`
    await app.inject({ method: 'PATCH', url: '/v1/users/me', headers: as(user), payload: { email } })
    return { ...user, email }
  }
  const verify = async (user: TestUser & { email: string }) => {
    const before = mail.received.filter((m) => m.to.includes(user.email)).length
    const res = await app.inject({ method: 'POST', url: '/v1/users/me/email/verification', headers: as(user) })
    t.equal(res.statusCode, 202)
    const mails = await mail.waitFor(user.email, before + 1)
    const token = tokenFrom(mails.at(-1)!, 'verify-email')
    t.equal((await app.inject({ method: 'POST', url: '/v1/auth/email/verify', payload: { token } })).statusCode, 204)
    return token
  }

  await t.test('email verification: a mailed link, single use, and a new address is unverified', async (t) => {
    const user = await withEmail('verify')
    t.same(await me(user), { ...await me(user), email_verified: false, mfa_enabled: false })
    t.equal((await app.inject({ method: 'POST', url: '/v1/users/me/email/verification', headers: as(user) })).statusCode, 202)
    const [message] = await mail.waitFor(user.email)
    t.equal(message!.from, 'tasks@example.test')
    t.equal(message!.subject, 'Confirm your email address')
    t.match(message!.text, `https://tasks.example.test/app/verify-email?token=ev_`, 'the link is built from PUBLIC_URL')
    t.match(message!.html, /<a href="https:\/\/tasks\.example\.test\/app\/verify-email\?token=ev_/, 'with an HTML body beside the text')
    const token = tokenFrom(message!, 'verify-email')
    t.ok(Buffer.from(token.slice(3), 'base64url').length >= 32, 'at least 256 random bits')
    t.equal((await app.inject({ method: 'POST', url: '/v1/auth/email/verify', payload: { token } })).statusCode, 204)
    t.equal((await me(user)).email_verified, true)
    const again = await app.inject({ method: 'POST', url: '/v1/auth/email/verify', payload: { token } })
    t.equal(again.statusCode, 400)
    t.equal(again.json().code, 'INVALID_EMAIL_TOKEN', 'single use')

    // A link mailed to the old address proves nothing about the new one.
    await app.inject({ method: 'POST', url: '/v1/users/me/email/verification', headers: as(user) })
    const [, second] = await mail.waitFor(user.email, 2)
    await app.inject({ method: 'PATCH', url: '/v1/users/me', headers: as(user), payload: { email: `new-${user.email}` } })
    t.equal((await me(user)).email_verified, false, 'changing the email clears email_verified')
    t.equal((await app.inject({ method: 'POST', url: '/v1/auth/email/verify', payload: { token: tokenFrom(second!, 'verify-email') } })).json().code, 'INVALID_EMAIL_TOKEN')
    // The same address again keeps nothing either: it was cleared, and stays so until verified.
    t.equal((await app.inject({ method: 'POST', url: '/v1/auth/email/verify', payload: { token: 'ev_nonsense' } })).statusCode, 400)

    const bare = await createUser(app, 'noemail')
    const none = await app.inject({ method: 'POST', url: '/v1/users/me/email/verification', headers: as(bare) })
    t.equal(none.statusCode, 400)
    t.equal(none.json().code, 'NO_EMAIL')
    t.match(none.headers['content-type'], 'application/problem+json')
  })

  await t.test('forgot: 202 whoever asks, mail only to a verified address, the same statements either way', async (t) => {
    const verified = await withEmail('forgot')
    await verify(verified)
    const unverified = await withEmail('unverified')

    // Counts the statements each request sends to the database (every query goes through these).
    const client = (app.db as unknown as { $client: Record<string, (...args: unknown[]) => unknown> }).$client
    const method = databaseKind === 'postgres' ? 'unsafe' : 'query'
    const original = client[method]!
    let statements: string[] = []
    client[method] = function (this: unknown, ...args: unknown[]) {
      // The wake-up of event streams after a write is sent after its answer, at most every 20 ms.
      if (!String(args[0]).includes('pg_notify')) statements.push(String(args[0]))
      return original.apply(this, args)
    }
    const forgot = async (email: string) => {
      statements = []
      const res = await app.inject({ method: 'POST', url: '/v1/auth/password/forgot', payload: { email } })
      return { status: res.statusCode, body: res.body, statements }
    }
    const unknown = await forgot(`nobody-${uniqueName()}@example.test`)
    const notVerified = await forgot(unverified.email)
    const known = await forgot(verified.email.toUpperCase())
    client[method] = original
    t.same([unknown.status, notVerified.status, known.status], [202, 202, 202])
    t.same([unknown.body, notVerified.body], [known.body, known.body], 'the same answer')
    t.ok(known.statements.length > 0, 'the statements were counted')
    t.same(unknown.statements, known.statements, 'an unknown address runs the same statements as a known one')
    t.same(notVerified.statements, known.statements, 'and so does an unverified one')

    const [, reset] = await mail.waitFor(verified.email, 2)
    t.equal(reset!.subject, 'Reset your password')
    t.equal(mail.received.filter((m) => m.to.includes(unverified.email) && m.subject === 'Reset your password').length, 0, 'nothing to the unverified address')
    t.equal(mail.received.filter((m) => m.subject === 'Reset your password').length, 1, 'one mail in all: the verified address\'s')
  })

  await t.test('forgot is limited per address, whichever client asks', async (t) => {
    const email = `limited-${uniqueName()}@example.test`
    const statuses: number[] = []
    for (let i = 0; i < 6; i++) {
      const res = await app.inject({ method: 'POST', url: '/v1/auth/password/forgot', payload: { email }, remoteAddress: `10.0.0.${i + 1}` })
      statuses.push(res.statusCode)
      if (res.statusCode === 429) t.ok(Number(res.headers['retry-after']) > 0, 'with Retry-After')
    }
    t.same(statuses, [202, 202, 202, 202, 202, 429])
    t.equal((await app.inject({ method: 'POST', url: '/v1/auth/password/forgot', payload: { email: `other-${email}` } })).statusCode, 202, 'another address is not held back')
  })

  await t.test('reset: sets the password and ends every earlier sign-in; the token works once', async (t) => {
    const user = await withEmail('reset')
    await verify(user)
    t.equal((await app.inject({ method: 'POST', url: '/v1/auth/password/forgot', payload: { email: user.email } })).statusCode, 202)
    const resetMail = (await mail.waitFor(user.email, 2)).find((m) => m.subject === 'Reset your password')!
    const token = tokenFrom(resetMail, 'reset-password')

    // A web session of the same account, on the pages.
    const browser = new PageClient(app)
    await browser.get('/app/login')
    t.equal((await browser.post('/app/login', { username: user.username, password: user.password })).statusCode, 303)
    t.equal((await browser.get('/app/tasks')).statusCode, 200, 'signed in on the pages')

    const weak = await app.inject({ method: 'POST', url: '/v1/auth/password/reset', payload: { token, new_password: user.username } })
    t.equal(weak.statusCode, 400, 'the password policy holds, and the token is not spent by a refusal')
    // Access tokens carry whole seconds: one issued in the same second as the reset would still pass.
    await new Promise((resolve) => setTimeout(resolve, 1100))
    const newPassword = 'a brand new passphrase'
    t.equal((await app.inject({ method: 'POST', url: '/v1/auth/password/reset', payload: { token, new_password: newPassword } })).statusCode, 204)
    t.equal((await app.inject({ method: 'GET', url: '/v1/users/me', headers: as(user) })).statusCode, 401, 'the older access token is refused')
    t.equal((await app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refresh_token: user.refreshToken } })).statusCode, 401, 'the refresh token is revoked')
    const page = await browser.get('/app/tasks')
    t.equal(page.statusCode, 303)
    t.match(page.headers.location, /^\/app\/login\?/, 'the web session is ended')
    const reused = await app.inject({ method: 'POST', url: '/v1/auth/password/reset', payload: { token, new_password: 'yet another passphrase' } })
    t.equal(reused.statusCode, 400)
    t.equal(reused.json().code, 'INVALID_RESET_TOKEN')
    t.equal((await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: user.username, password: user.password } })).statusCode, 401, 'the old password is gone')
    t.equal((await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: user.username, password: newPassword } })).statusCode, 200)
  })

  /** Enrols and activates two-factor for a new user; returns the secret and recovery codes. */
  const withTwoFactor = async (prefix: string) => {
    const user = await createUser(app, prefix)
    const enrol = await app.inject({ method: 'POST', url: '/v1/users/me/mfa/totp', headers: as(user), payload: { current_password: user.password } })
    t.equal(enrol.statusCode, 201)
    const { secret, otpauth_uri: uri } = enrol.json<{ secret: string, otpauth_uri: string }>()
    await awayFromStepEdge()
    const activate = await app.inject({ method: 'POST', url: '/v1/users/me/mfa/totp/activate', headers: as(user), payload: { code: await codeAt(secret) } })
    t.equal(activate.statusCode, 200)
    return { user, secret, uri, recoveryCodes: activate.json<{ recovery_codes: string[] }>().recovery_codes }
  }
  const logIn = async (user: TestUser) => await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: user.username, password: user.password } })
  const mfaTokenOf = async (user: TestUser) => {
    const res = await logIn(user)
    t.equal(res.statusCode, 401)
    t.equal(res.json().code, 'MFA_REQUIRED')
    return res.json<{ mfa_token: string }>().mfa_token
  }
  const secondStep = async (payload: object) => await app.inject({ method: 'POST', url: '/v1/auth/login/mfa', payload })

  await t.test('enrolment: needs the password, shows an otpauth URI, and is on only after a right code', async (t) => {
    const user = await createUser(app, 'enrol')
    const wrongPassword = await app.inject({ method: 'POST', url: '/v1/users/me/mfa/totp', headers: as(user), payload: { current_password: 'not it at all' } })
    t.equal(wrongPassword.statusCode, 403)
    t.equal(wrongPassword.json().code, 'WRONG_CURRENT_PASSWORD')
    const notYet = await app.inject({ method: 'POST', url: '/v1/users/me/mfa/totp/activate', headers: as(user), payload: { code: '123456' } })
    t.equal(notYet.json().code, 'MFA_NOT_ENROLLING')
    const enrol = await app.inject({ method: 'POST', url: '/v1/users/me/mfa/totp', headers: as(user), payload: { current_password: user.password } })
    const { secret, otpauth_uri: uri } = enrol.json<{ secret: string, otpauth_uri: string }>()
    t.match(secret, /^[A-Z2-7]{32}$/, '160 bits, base32')
    t.match(uri, new RegExp(`^otpauth://totp/Tasks%20API:${user.username}\\?secret=${secret}&issuer=Tasks%20API`))
    t.equal((await me(user)).mfa_enabled, false, 'enrolling is not yet on')
    await awayFromStepEdge()
    const wrong = await app.inject({ method: 'POST', url: '/v1/users/me/mfa/totp/activate', headers: as(user), payload: { code: (Number(await codeAt(secret)) + 1).toString().padStart(6, '0').slice(-6) } })
    t.equal(wrong.statusCode, 403)
    t.equal(wrong.json().code, 'WRONG_MFA_CODE', 'a wrong code is refused (otplib\'s verify answers { valid: false })')
    const activate = await app.inject({ method: 'POST', url: '/v1/users/me/mfa/totp/activate', headers: as(user), payload: { code: await codeAt(secret) } })
    t.equal(activate.statusCode, 200)
    const codes = activate.json<{ recovery_codes: string[] }>().recovery_codes
    t.equal(codes.length, 10)
    t.equal(new Set(codes).size, 10)
    t.ok(codes.every((c) => /^[a-z2-9]{5}-[a-z2-9]{5}-[a-z2-9]{5}$/.test(c)))
    t.equal((await me(user)).mfa_enabled, true)
    const twice = await app.inject({ method: 'POST', url: '/v1/users/me/mfa/totp', headers: as(user), payload: { current_password: user.password } })
    t.equal(twice.json().code, 'MFA_ALREADY_ENABLED')
  })

  await t.test('login: MFA_REQUIRED, then a code within one step either side, each once', async (t) => {
    const { user, secret } = await withTwoFactor('login')
    const token = await mfaTokenOf(user)
    t.match(token, /^mfa_/)
    await awayFromStepEdge(8)
    // The activation used the current step: a code of an earlier step is now refused, as it is older.
    t.equal((await secondStep({ mfa_token: token, code: await codeAt(secret, -1) })).json().code, 'INVALID_MFA_CODE', 'no step at or before the last accepted one')
    const next = await codeAt(secret, 1)
    const ok = await secondStep({ mfa_token: token, code: next })
    t.equal(ok.statusCode, 200, 'a code one step ahead is accepted')
    t.ok(ok.json().access_token)
    t.equal((await secondStep({ mfa_token: token, code: next })).json().code, 'INVALID_MFA_TOKEN', 'the mfa_token is spent by its login')
    const replay = await secondStep({ mfa_token: await mfaTokenOf(user), code: next })
    t.equal(replay.json().code, 'INVALID_MFA_CODE', 'the same code is never accepted twice')
    t.equal((await secondStep({ mfa_token: await mfaTokenOf(user), code: await codeAt(secret, 3) })).json().code, 'INVALID_MFA_CODE', 'three steps ahead is too far')

    const form = await app.inject({
      method: 'POST',
      url: '/v1/auth/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ grant_type: 'password', username: user.username, password: user.password }).toString(),
    })
    t.equal(form.statusCode, 400)
    t.equal(form.json().error, 'invalid_grant')
    t.match(form.json().error_description, /two-factor/, 'the password grant says why')

    const key = await app.inject({ method: 'POST', url: '/v1/api-keys', headers: { authorization: `Bearer ${ok.json().access_token as string}` }, payload: { name: 'ci', scopes: ['tasks:read'] } })
    t.equal(key.statusCode, 201)
    t.equal((await app.inject({ method: 'GET', url: '/v1/tasks', headers: { 'x-api-key': key.json().key as string } })).statusCode, 200, 'API keys are unaffected')
  })

  await t.test('recovery codes: each once; new ones void the old', async (t) => {
    const { user, secret, recoveryCodes } = await withTwoFactor('recovery')
    const first = recoveryCodes[0]!
    const res = await secondStep({ mfa_token: await mfaTokenOf(user), recovery_code: first.toUpperCase().replaceAll('-', ' ') })
    t.equal(res.statusCode, 200, 'case, spaces and dashes do not matter')
    t.equal((await secondStep({ mfa_token: await mfaTokenOf(user), recovery_code: first })).json().code, 'INVALID_MFA_CODE', 'a recovery code works once')
    const signedIn = { ...user, accessToken: res.json<{ access_token: string }>().access_token }
    await awayFromStepEdge()
    const renewed = await app.inject({ method: 'POST', url: '/v1/users/me/mfa/recovery-codes', headers: as(signedIn), payload: { current_password: user.password, code: await codeAt(secret, 1) } })
    t.equal(renewed.statusCode, 200)
    const fresh = renewed.json<{ recovery_codes: string[] }>().recovery_codes
    t.equal((await secondStep({ mfa_token: await mfaTokenOf(user), recovery_code: recoveryCodes[1]! })).json().code, 'INVALID_MFA_CODE', 'the old codes are void')
    t.equal((await secondStep({ mfa_token: await mfaTokenOf(user), recovery_code: fresh[0]! })).statusCode, 200)
  })

  await t.test('wrong codes: the 5th spends the mfa_token, and they count toward the login throttle', async (t) => {
    const { user, secret } = await withTwoFactor('throttle')
    const token = await mfaTokenOf(user)
    for (let i = 0; i < 5; i++) {
      const res = await secondStep({ mfa_token: token, code: '000000' })
      t.equal(res.json().code, 'INVALID_MFA_CODE', `wrong code ${i + 1}`)
    }
    t.equal((await secondStep({ mfa_token: token, code: await codeAt(secret, 1) })).json().code, 'INVALID_MFA_TOKEN', 'spent after 5 wrong codes, even for a right one')
    // LOGIN_FAILURES_MAX is 7 here: 5 wrong codes and 2 more make 7 failures of this username.
    const second = await mfaTokenOf(user)
    await secondStep({ mfa_token: second, code: '000000' })
    await secondStep({ mfa_token: second, code: '000000' })
    const throttled = await secondStep({ mfa_token: second, code: await codeAt(secret, 1) })
    t.equal(throttled.statusCode, 429, 'the account\'s login throttle holds')
    t.equal((await logIn(user)).statusCode, 429, 'for the password step too')
  })

  await t.test('a login waiting for its code ends when the password changes', async (t) => {
    const { user, secret } = await withTwoFactor('changed')
    const token = await mfaTokenOf(user)
    t.equal((await app.inject({ method: 'POST', url: '/v1/users/me/password', headers: as(user), payload: { current_password: user.password, new_password: 'changed in the meantime' } })).statusCode, 204)
    t.equal((await secondStep({ mfa_token: token, code: await codeAt(secret, 1) })).json().code, 'INVALID_MFA_TOKEN')
  })

  await t.test('turning off: by the user with password and code, or by an admin', async (t) => {
    const { user, secret, recoveryCodes } = await withTwoFactor('off')
    const token = await mfaTokenOf(user)
    const login = await secondStep({ mfa_token: token, code: await codeAt(secret, 1) })
    const signedIn = { ...user, accessToken: login.json<{ access_token: string }>().access_token }
    const wrong = await app.inject({ method: 'DELETE', url: '/v1/users/me/mfa/totp', headers: as(signedIn), payload: { current_password: user.password, code: '000000' } })
    t.equal(wrong.json().code, 'WRONG_MFA_CODE')
    const off = await app.inject({ method: 'DELETE', url: '/v1/users/me/mfa/totp', headers: as(signedIn), payload: { current_password: user.password, code: recoveryCodes[0]! } })
    t.equal(off.statusCode, 204, 'a recovery code serves as the code')
    t.equal((await logIn(user)).statusCode, 200, 'the password alone logs in again')
    t.equal((await app.inject({ method: 'DELETE', url: '/v1/users/me/mfa/totp', headers: as(signedIn), payload: { current_password: user.password, code: '000000' } })).json().code, 'MFA_NOT_ENABLED')

    const other = await withTwoFactor('lost')
    const asAdmin = as(await createAdmin(app))
    t.equal((await app.inject({ method: 'DELETE', url: `/v1/users/${other.user.id}/mfa`, headers: as(user) })).statusCode, 403, 'only admins')
    t.equal((await app.inject({ method: 'DELETE', url: `/v1/users/${other.user.id}/mfa`, headers: asAdmin })).statusCode, 204)
    t.equal((await logIn(other.user)).statusCode, 200)
    t.equal((await app.inject({ method: 'DELETE', url: '/v1/users/00000000-0000-4000-8000-000000000000/mfa', headers: asAdmin })).statusCode, 404)
  })
})

tap.test('without SMTP_URL', async (t) => {
  await t.test('in production the mail-sending endpoints answer 503 MAIL_UNAVAILABLE', async (t) => {
    const app = await build(t, { NODE_ENV: 'production', SECRET_KEY: 'x'.repeat(40), AUTH_RATE_LIMIT_MAX: '1000' })
    const user = await createUser(app, 'nomail')
    await app.inject({ method: 'PATCH', url: '/v1/users/me', headers: { authorization: `Bearer ${user.accessToken}` }, payload: { email: `${user.username}@example.test` } })
    const res = await app.inject({ method: 'POST', url: '/v1/users/me/email/verification', headers: { authorization: `Bearer ${user.accessToken}` } })
    t.equal(res.statusCode, 503)
    t.equal(res.json().code, 'MAIL_UNAVAILABLE')
    const forgot = await app.inject({ method: 'POST', url: '/v1/auth/password/forgot', payload: { email: 'someone@example.test' } })
    t.equal(forgot.json().code, 'MAIL_UNAVAILABLE')
  })

  await t.test('in development the message and its link are written to the log, beside every security event', async (t) => {
    const { app, logs } = await buildProbe(t, { AUTH_RATE_LIMIT_MAX: '1000' })
    const lines = () => logs().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    /** The token of the latest link to `page` in the log, once it is there. */
    const loggedToken = async (page: string, after: number) => {
      for (const deadline = Date.now() + 5000; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 20))) {
        const line = lines().slice(after).find((l) => String((l.mail as { link?: string } | undefined)?.link).includes(`/app/${page}?token=`))
        if (line !== undefined) {
          t.match(line.msg, /mail not sent \(no SMTP_URL\)/)
          t.match((line.mail as { text: string }).text, 'Hello', 'the whole message is logged')
          return new URL((line.mail as { link: string }).link).searchParams.get('token')!
        }
      }
      throw new Error(`no /app/${page} link was logged`)
    }
    const user = await createUser(app, 'logged')
    const auth = { authorization: `Bearer ${user.accessToken}` }
    const email = `${user.username}@example.test`
    await app.inject({ method: 'PATCH', url: '/v1/users/me', headers: auth, payload: { email } })
    let mark = lines().length
    t.equal((await app.inject({ method: 'POST', url: '/v1/users/me/email/verification', headers: auth })).statusCode, 202)
    const verification = await loggedToken('verify-email', mark)
    t.equal((await app.inject({ method: 'POST', url: '/v1/auth/email/verify', payload: { token: verification } })).statusCode, 204)
    mark = lines().length
    await app.inject({ method: 'POST', url: '/v1/auth/password/forgot', payload: { email } })
    const reset = await loggedToken('reset-password', mark)
    const password = 'the password after a reset'
    t.equal((await app.inject({ method: 'POST', url: '/v1/auth/password/reset', payload: { token: reset, new_password: password } })).statusCode, 204)
    const login = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: user.username, password } })
    const fresh = { authorization: `Bearer ${login.json<{ access_token: string }>().access_token}` }
    const { secret } = (await app.inject({ method: 'POST', url: '/v1/users/me/mfa/totp', headers: fresh, payload: { current_password: password } })).json<{ secret: string }>()
    await awayFromStepEdge()
    const { recovery_codes: codes } = (await app.inject({ method: 'POST', url: '/v1/users/me/mfa/totp/activate', headers: fresh, payload: { code: await codeAt(secret) } })).json<{ recovery_codes: string[] }>()
    const token = (await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: user.username, password } })).json<{ mfa_token: string }>().mfa_token
    await app.inject({ method: 'POST', url: '/v1/auth/login/mfa', payload: { mfa_token: token, code: '000000' } })
    t.equal((await app.inject({ method: 'POST', url: '/v1/auth/login/mfa', payload: { mfa_token: token, recovery_code: codes[0] } })).statusCode, 200)
    const admin = await createAdmin(app)
    t.equal((await app.inject({ method: 'DELETE', url: `/v1/users/${user.id}/mfa`, headers: { authorization: `Bearer ${admin.accessToken}` } })).statusCode, 204)

    const events = lines().filter((l) => l.security === true)
    for (const event of ['email.verified', 'password.reset_requested', 'password.reset', 'mfa.enabled', 'mfa.failed', 'recovery_code.used', 'mfa.disabled']) {
      t.ok(events.some((l) => l.event === event && l.userId === user.id), event)
    }
    t.match(events.find((l) => l.event === 'mfa.disabled'), { actorId: admin.id })
    const text = logs()
    for (const kept of [secret, password, ...codes]) t.notOk(text.includes(kept), 'no secret, password or recovery code in the log')
  })
})

tap.test('a rotated root secret: two-factor secrets are sealed again as they are used, so the old root can go', async (t) => {
  const [oldRoot, newRoot] = ['o'.repeat(40), 'n'.repeat(40)]
  const relaxed = { AUTH_RATE_LIMIT_MAX: '1000', WEBHOOK_DELIVERY: 'false' }
  const before = await build(t, { SECRET_KEY: oldRoot, ...relaxed })
  const user = await createUser(before, 'rotated')
  const enrol = await before.inject({ method: 'POST', url: '/v1/users/me/mfa/totp', headers: { authorization: `Bearer ${user.accessToken}` }, payload: { current_password: user.password } })
  const { secret } = enrol.json<{ secret: string }>()
  // Three codes in one step's window: the previous step's, this one's, the next one's.
  await awayFromStepEdge(10)
  t.equal((await before.inject({ method: 'POST', url: '/v1/users/me/mfa/totp/activate', headers: { authorization: `Bearer ${user.accessToken}` }, payload: { code: await codeAt(secret, -1) } })).statusCode, 200)
  const sealed = async () => (await before.usersRepository.findById(user.id))!.totpSecret

  const logInWithCode = async (app: typeof before, steps: number) => {
    const first = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: user.username, password: user.password } })
    return (await app.inject({ method: 'POST', url: '/v1/auth/login/mfa', payload: { mfa_token: first.json<{ mfa_token: string }>().mfa_token, code: await codeAt(secret, steps) } })).statusCode
  }
  const underOld = await sealed()
  const during = await build(t, { SECRET_KEY: newRoot, SECRET_KEY_PREVIOUS: oldRoot, ...relaxed })
  t.equal(await logInWithCode(during, 0), 200, 'during the rotation the old root still opens the secret')
  t.not(await sealed(), underOld, 'and the secret is sealed again, under the new root')
  const after = await build(t, { SECRET_KEY: newRoot, ...relaxed })
  t.equal(await logInWithCode(after, 1), 200, 'once the old root is dropped, the secret still opens')
})
