/**
 * Account security in the pages: the email banner and verification, forgotten passwords, and
 * two-factor (turning it on from the account page, the login's code step, recovery codes, turning it
 * off). Mail goes to a real SMTP server started here; codes are computed here, as an authenticator
 * app would.
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import tap from 'tap'
import { buildProbe } from '../auth/support.js'
import { type MailServer, startMailServer, tokenFrom } from '../mail-server.js'
import { awayFromStepEdge, codeAt } from '../totp.js'
import { buildWeb, PageClient, type PageUser, signUp } from './support.js'

/** Signs a user up with an address of their own. */
async function withEmail (app: FastifyInstance, prefix: string): Promise<PageUser & { email: string }> {
  const email = `${prefix}-${Math.random().toString(36).slice(2, 10)}@example.test`
  return { ...await signUp(app, prefix, { email }), email }
}

/** Asks for a verification link from the account page; the token of the mail that arrives. */
async function mailedVerification (mail: MailServer, user: PageUser & { email: string }): Promise<string> {
  const before = mail.received.filter((m) => m.to.includes(user.email)).length
  await user.client.get('/app/account')
  const sent = await user.client.post('/app/account/email-verification', { return_to: '/app/account' })
  if (sent.statusCode !== 303) throw new Error(`no verification mail: ${sent.statusCode} ${sent.body.slice(0, 300)}`)
  return tokenFrom((await mail.waitFor(user.email, before + 1)).at(-1)!, 'verify-email')
}

/** The text of a page's form errors and notices, for messages. */
const shown = (res: LightMyRequestResponse) => res.body.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ')

tap.test('account security pages', async (t) => {
  const mail = await startMailServer()
  t.teardown(() => mail.close())
  const { app, logs } = await buildProbe(t, { SMTP_URL: mail.url, PUBLIC_URL: 'https://tasks.example.test', WEBHOOK_DELIVERY: 'false' })
  /** The security events logged about the user since the test began. */
  const eventsOf = (userId: string) => logs().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.security === true && l.userId === userId).map((l) => l.event)
  const idOf = async (user: PageUser) => (await app.usersRepository.findByUsername(user.username))!.id

  await t.test('the banner asks to verify an unverified address; the link verifies it with one press', async (t) => {
    const user = await withEmail(app, 'banner')
    const userId = await idOf(user)
    const tasks = await user.client.get('/app/tasks')
    t.match(shown(tasks), 'Please verify your email address')
    t.match(tasks.body, /<form method="post" action="\/app\/account\/email-verification">/)
    t.match(tasks.body, /name="return_to" value="\/app\/tasks"/, 'the button comes back to this page')
    const account = await user.client.get('/app/account')
    t.match(shown(account), `${user.email} (not verified)`)

    const sent = await user.client.post('/app/account/email-verification', { return_to: '/app/tasks' })
    t.equal(sent.statusCode, 303)
    t.equal(sent.headers.location, '/app/tasks')
    t.match(shown(await user.client.get('/app/tasks')), `A verification link is on its way to ${user.email}`)
    const [message] = await mail.waitFor(user.email)
    t.match(message!.text, 'https://tasks.example.test/app/verify-email?token=ev_')
    const token = tokenFrom(message!, 'verify-email')

    // A scanner fetching the link verifies nothing: the page only offers the button.
    const landing = await user.client.get(`/app/verify-email?token=${encodeURIComponent(token)}`)
    t.equal(landing.statusCode, 200)
    t.match(landing.body, /<button type="submit">Verify my email address<\/button>/)
    t.match(landing.headers['referrer-policy'], 'no-referrer', 'the token in the address goes nowhere else')
    t.match(shown(await user.client.get('/app/account')), '(not verified)', 'not verified by the GET')

    const verified = await user.client.post('/app/verify-email', { token })
    t.equal(verified.statusCode, 303)
    t.equal(verified.headers.location, '/app/account')
    const after = await user.client.get('/app/account')
    t.match(shown(after), 'Your email address is verified.')
    t.match(shown(after), `${user.email} (verified)`)
    t.notMatch(shown(after), 'Please verify your email address', 'the banner is gone')

    const again = await user.client.post('/app/verify-email', { token })
    t.equal(again.statusCode, 400)
    t.match(shown(again), 'This verification link is unknown, used or expired')
    t.same(eventsOf(userId).filter((e) => e === 'email.verified'), ['email.verified'], 'logged once')

    const bare = await signUp(app, 'noemail')
    t.notMatch(shown(await bare.client.get('/app/tasks')), 'Please verify', 'no banner without an address')
    t.match(shown(await bare.client.get('/app/account')), 'Email None')
  })

  await t.test('a link followed without a login verifies too, then asks to log in; a form posted elsewhere is refused', async (t) => {
    const user = await withEmail(app, 'away')
    const token = await mailedVerification(mail, user)
    const phone = new PageClient(app)
    await phone.get(`/app/verify-email?token=${encodeURIComponent(token)}`)
    const verified = await phone.post('/app/verify-email', { token })
    t.equal(verified.headers.location, '/app/account')
    const login = await phone.get('/app/account')
    t.equal(login.statusCode, 303)
    t.match(login.headers.location, /^\/app\/login\?next=%2Fapp%2Faccount/)
    t.match(shown(await phone.get(login.headers.location!)), 'Your email address is verified.')
    t.match(shown(await user.client.get('/app/account')), `${user.email} (verified)`)

    t.equal((await new PageClient(app).get('/app/verify-email')).statusCode, 200, 'no token: the page says so')
    t.match(shown(await new PageClient(app).get('/app/verify-email')), 'unknown, used or expired')
    const forged = await user.client.post('/app/account/email-verification', { _csrf: 'forged', return_to: '/app/tasks' })
    t.equal(forged.statusCode, 403, 'the banner\'s form needs its CSRF token')
    await user.client.get('/app/account')
    const elsewhere = await user.client.post('/app/account/email-verification', { return_to: 'https://evil.example/' })
    t.equal(elsewhere.headers.location, '/app/account', 'it only ever returns to a page of /app')
  })

  await t.test('forgot password: the same page whoever asks; the link shows a form without spending itself; the reset logs out everywhere', async (t) => {
    const user = await withEmail(app, 'forgot')
    const userId = await idOf(user)
    const verification = await mailedVerification(mail, user)
    await user.client.get(`/app/verify-email?token=${verification}`)
    await user.client.post('/app/verify-email', { token: verification })

    const visitor = new PageClient(app)
    t.match((await visitor.get('/app/login')).body, /<a href="\/app\/forgot-password">Forgot your password\?<\/a>/)
    t.equal((await visitor.get('/app/forgot-password')).statusCode, 200)
    const invalid = await visitor.post('/app/forgot-password', { email: 'not an address' })
    t.equal(invalid.statusCode, 400)
    t.match(invalid.body, /id="email-error"/)

    const mailsBefore = mail.received.length
    const unknown = await visitor.post('/app/forgot-password', { email: 'nobody-here@example.test' })
    const known = await visitor.post('/app/forgot-password', { email: user.email.toUpperCase() })
    t.equal(unknown.statusCode, 303)
    t.same([known.statusCode, known.headers.location], [unknown.statusCode, unknown.headers.location], 'an address nobody has gets the same answer')
    const sent = await visitor.get(unknown.headers.location!)
    t.match(shown(sent), 'If an account has this verified address, a link to choose a new password is on its way.')
    const [reset] = (await mail.waitFor(user.email, 2)).filter((m) => m.text.includes('/app/reset-password'))
    t.equal(mail.received.length, mailsBefore + 1, 'one mail, to the verified address only')
    const token = tokenFrom(reset!, 'reset-password')

    const form = await visitor.get(`/app/reset-password?token=${encodeURIComponent(token)}`)
    t.equal(form.statusCode, 200)
    t.match(shown(form), `For the account ${user.username}`)
    t.equal((await visitor.get(`/app/reset-password?token=${encodeURIComponent(token)}`)).statusCode, 200, 'showing the form does not spend the link')
    t.equal((await visitor.post('/app/reset-password', { token, new_password: 'short' })).statusCode, 400)
    const same = await visitor.post('/app/reset-password', { token, new_password: user.username.toUpperCase() })
    t.equal(same.statusCode, 400)
    t.match(shown(same), 'Choose a password that is not your username.')

    const password = 'a password chosen after a reset'
    const done = await visitor.post('/app/reset-password', { token, new_password: password })
    t.equal(done.statusCode, 303)
    t.equal(done.headers.location, '/app/login?reason=password_reset')
    t.match(shown(await visitor.get(done.headers.location!)), 'Your new password is set. Log in with it.')
    t.equal((await user.client.get('/app/tasks')).statusCode, 303, 'the session from before the reset has ended')
    t.equal((await visitor.post('/app/login', { username: user.username, password: user.password })).statusCode, 401, 'the old password is refused')
    t.equal((await visitor.post('/app/login', { username: user.username, password })).statusCode, 303)

    const spent = await new PageClient(app).get(`/app/reset-password?token=${encodeURIComponent(token)}`)
    t.equal(spent.statusCode, 400)
    t.match(shown(spent), 'This reset link is unknown, used or expired.')
    const replayed = new PageClient(app)
    await replayed.get('/app/forgot-password')
    t.equal((await replayed.post('/app/reset-password', { token, new_password: 'yet another password' })).statusCode, 400, 'the link works once')
    t.same(eventsOf(userId).filter((e) => e === 'password.reset'), ['password.reset'], 'logged once')
  })

  await t.test('two-factor: turned on from the account page, then the login asks for a code', async (t) => {
    const user = await signUp(app, 'mfa')
    const userId = await idOf(user)
    const account = await user.client.get('/app/account')
    t.match(shown(account), 'Two-factor authentication Off.')
    t.match(account.body, /<a class="button" href="\/app\/account\/two-factor\/enrol">Turn on<\/a>/)

    t.equal((await user.client.get('/app/account/two-factor/enrol')).statusCode, 200)
    const wrongPassword = await user.client.post('/app/account/two-factor/enrol', { current_password: 'not my password' })
    t.equal(wrongPassword.statusCode, 403)
    t.match(wrongPassword.body, /id="current_password-error"/)
    const enrol = await user.client.post('/app/account/two-factor/enrol', { current_password: user.password })
    t.equal(enrol.statusCode, 200)
    t.match(enrol.body, /<div class="qr-code" role="img" aria-label="[^"]+"><svg xmlns="http:\/\/www.w3.org\/2000\/svg"/, 'the QR code is inline SVG')
    t.notMatch(enrol.body, /<script|\sstyle=|\son[a-z]+=|src="data:/i, 'nothing the CSP would block')
    const secret = /name="secret" value="([A-Z2-7]+)"/.exec(enrol.body)![1]!
    t.match(enrol.body, `<code class="totp-secret" id="totp-secret">${secret.match(/.{1,4}/g)!.join(' ')}</code>`, 'the secret is shown as text too')

    const wrongCode = await user.client.post('/app/account/two-factor/activate', { secret, code: await codeAt(secret, -20) })
    t.equal(wrongCode.statusCode, 403)
    t.match(wrongCode.body, /id="code-error"/)
    t.match(wrongCode.body, /<svg /, 'the QR code is shown again')
    t.equal((await user.client.post('/app/account/two-factor/activate', { secret: 'not base32!', code: '123456' })).statusCode, 400)

    await awayFromStepEdge()
    const activated = await user.client.post('/app/account/two-factor/activate', { secret, code: await codeAt(secret) })
    t.equal(activated.statusCode, 200)
    t.equal(activated.headers['cache-control'], 'no-store', 'the codes are in no cache')
    const codes = [...activated.body.matchAll(/<li><code>([a-z2-9]{5}-[a-z2-9]{5}-[a-z2-9]{5})<\/code><\/li>/g)].map((m) => m[1]!)
    t.equal(codes.length, 10, 'ten recovery codes')
    const download = /<a class="button" href="(data:text\/plain;charset=utf-8,[^"]+)" download="tasks-recovery-codes.txt">/.exec(activated.body)?.[1]
    t.ok(download, 'a download link made in the page')
    t.same(decodeURIComponent(download!.slice(download!.indexOf(',') + 1)).trim().split('\n').slice(-10), codes, 'of the same codes')
    t.match(shown(await user.client.get('/app/account')), 'Two-factor authentication On.')
    t.match((await user.client.get('/app/account')).body, /<strong id="recovery-codes-left">10<\/strong>/)
    t.equal((await user.client.get('/app/account/two-factor/enrol')).statusCode, 303, 'on already: back to the account page')

    // The password alone: no session yet, a page asking for the code.
    const browser = new PageClient(app)
    await browser.get('/app/login')
    const password = await browser.post('/app/login', { username: user.username, password: user.password, next: '/app/projects' })
    t.equal(password.statusCode, 303)
    t.equal(password.headers.location, '/app/login/two-factor')
    t.equal((await browser.get('/app/tasks')).statusCode, 303, 'not logged in by the password alone')
    const codePage = await browser.get('/app/login/two-factor')
    t.equal(codePage.statusCode, 200)
    t.match(shown(codePage), 'the 6-digit code from your authenticator app, or one of your recovery codes')
    const empty = await browser.post('/app/login/two-factor', { code: '' })
    t.equal(empty.statusCode, 400)
    t.match(empty.body, /id="code-error"/)
    const wrong = await browser.post('/app/login/two-factor', { code: await codeAt(secret, -20) })
    t.equal(wrong.statusCode, 401)
    t.match(shown(wrong), 'This code is wrong or already used.')
    t.equal((await browser.post('/app/login/two-factor', { _csrf: 'forged', code: await codeAt(secret, 1) })).statusCode, 403, 'CSRF as every form')
    // Typed as apps show it, with a space in the middle.
    const next = await codeAt(secret, 1)
    const right = await browser.post('/app/login/two-factor', { code: `${next.slice(0, 3)} ${next.slice(3)}` })
    t.equal(right.statusCode, 303)
    t.equal(right.headers.location, '/app/projects', 'on to where the login was going')
    t.equal((await browser.get('/app/projects')).statusCode, 200, 'logged in')
    t.equal((await browser.get('/app/login/two-factor')).headers.location, '/app/login', 'the code step is over')

    // A recovery code instead, once.
    const lost = new PageClient(app)
    await lost.get('/app/login')
    await lost.post('/app/login', { username: user.username, password: user.password })
    await lost.get('/app/login/two-factor')
    t.equal((await lost.post('/app/login/two-factor', { code: codes[0]!.toUpperCase() })).headers.location, '/app/tasks', 'a recovery code, in any case')
    const again = new PageClient(app)
    await again.get('/app/login')
    await again.post('/app/login', { username: user.username, password: user.password })
    await again.get('/app/login/two-factor')
    t.equal((await again.post('/app/login/two-factor', { code: codes[0]! })).statusCode, 401, 'each recovery code works once')
    t.match((await user.client.get('/app/account')).body, /<strong id="recovery-codes-left">9<\/strong>/)

    const events = eventsOf(userId)
    t.same(events.filter((e) => e === 'mfa.enabled'), ['mfa.enabled'])
    t.same(events.filter((e) => e === 'recovery_code.used'), ['recovery_code.used'], 'logged once, by the shared second step')
    t.equal(events.filter((e) => e === 'mfa.failed').length, 3, 'the wrong activation code and the two wrong login codes, once each')

    await t.test('new recovery codes, then two-factor off, each with the password and a code', async (t) => {
      t.equal((await user.client.get('/app/account/two-factor/recovery-codes')).statusCode, 200)
      const wrongFactor = await user.client.post('/app/account/two-factor/recovery-codes', { current_password: user.password, code: codes[0]! })
      t.equal(wrongFactor.statusCode, 403, 'a used recovery code')
      t.match(wrongFactor.body, /id="code-error"/)
      const badPassword = await user.client.post('/app/account/two-factor/recovery-codes', { current_password: 'wrong', code: codes[1]! })
      t.equal(badPassword.statusCode, 403)
      t.match(badPassword.body, /id="current_password-error"/)
      t.equal((await user.client.post('/app/account/two-factor/recovery-codes', { current_password: '', code: 'x' })).statusCode, 400)
      const renewed = await user.client.post('/app/account/two-factor/recovery-codes', { current_password: user.password, code: codes[1]! })
      t.equal(renewed.statusCode, 200)
      const fresh = [...renewed.body.matchAll(/<li><code>([a-z2-9-]{17})<\/code><\/li>/g)].map((m) => m[1]!)
      t.equal(fresh.length, 10)
      t.match((await user.client.get('/app/account')).body, /<strong id="recovery-codes-left">10<\/strong>/)

      t.equal((await user.client.get('/app/account/two-factor/disable')).statusCode, 200)
      t.equal((await user.client.post('/app/account/two-factor/disable', { current_password: user.password, code: codes[2]! })).statusCode, 403, 'the old codes no longer work')
      const off = await user.client.post('/app/account/two-factor/disable', { current_password: user.password, code: fresh[0]! })
      t.equal(off.statusCode, 303)
      t.equal(off.headers.location, '/app/account')
      t.match(shown(await user.client.get('/app/account')), 'Two-factor authentication is off')
      t.equal((await user.client.get('/app/account/two-factor/disable')).statusCode, 303, 'off already')

      const plain = new PageClient(app)
      await plain.get('/app/login')
      t.equal((await plain.post('/app/login', { username: user.username, password: user.password })).headers.location, '/app/tasks', 'the password alone logs in again')
      t.same(eventsOf(userId).filter((e) => e === 'mfa.disabled' || e === 'recovery_code.used'), ['recovery_code.used', 'recovery_code.used', 'recovery_code.used', 'mfa.disabled'])
    })
  })

  await t.test('the code step ends after five wrong codes, and with no login under way', async (t) => {
    const user = await signUp(app, 'spent')
    await user.client.get('/app/account/two-factor/enrol')
    const secret = /name="secret" value="([A-Z2-7]+)"/.exec((await user.client.post('/app/account/two-factor/enrol', { current_password: user.password })).body)![1]!
    await awayFromStepEdge()
    t.equal((await user.client.post('/app/account/two-factor/activate', { secret, code: await codeAt(secret) })).statusCode, 200)

    const browser = new PageClient(app)
    await browser.get('/app/login?next=/app/activity')
    await browser.post('/app/login', { username: user.username, password: user.password, next: '/app/activity' })
    await browser.get('/app/login/two-factor')
    for (let i = 0; i < 5; i++) t.equal((await browser.post('/app/login/two-factor', { code: '00000' + String(i) })).statusCode, 401)
    const spent = await browser.post('/app/login/two-factor', { code: await codeAt(secret, 1) })
    t.equal(spent.statusCode, 303, 'even the right code: the step is spent')
    t.equal(spent.headers.location, '/app/login?next=%2Fapp%2Factivity&reason=mfa_expired')
    t.match(shown(await browser.get(spent.headers.location!)), 'That login took too long or had too many wrong codes. Log in again.')
    t.equal((await browser.post('/app/login/two-factor', { code: '123456' })).headers.location, '/app/login?reason=mfa_expired', 'nothing under way')
  })
})

tap.test('limits: per address on the forms, per username on codes, and no mail server', async (t) => {
  await t.test('the forgot form is limited per client address, like the login form', async (t) => {
    const mail = await startMailServer()
    t.teardown(() => mail.close())
    const app = await buildWeb(t, { SMTP_URL: mail.url, AUTH_RATE_LIMIT_MAX: '2', WEBHOOK_DELIVERY: 'false' })
    const visitor = new PageClient(app)
    await visitor.get('/app/forgot-password')
    for (let i = 0; i < 2; i++) t.equal((await visitor.post('/app/forgot-password', { email: `someone${i}@example.test` })).statusCode, 303)
    const limited = await visitor.post('/app/forgot-password', { email: 'someone@example.test' })
    t.equal(limited.statusCode, 429)
    t.match(limited.headers['content-type'], 'text/html')
    t.match(shown(limited), 'Too many requests')
  })

  await t.test('wrong codes count as failed logins of the username: then 429', async (t) => {
    const app = await buildWeb(t, { LOGIN_FAILURES_MAX: '3', WEBHOOK_DELIVERY: 'false' })
    const user = await signUp(app, 'throttled')
    await user.client.get('/app/account/two-factor/enrol')
    const secret = /name="secret" value="([A-Z2-7]+)"/.exec((await user.client.post('/app/account/two-factor/enrol', { current_password: user.password })).body)![1]!
    await awayFromStepEdge()
    t.equal((await user.client.post('/app/account/two-factor/activate', { secret, code: await codeAt(secret) })).statusCode, 200)
    const browser = new PageClient(app)
    await browser.get('/app/login')
    await browser.post('/app/login', { username: user.username, password: user.password })
    await browser.get('/app/login/two-factor')
    for (let i = 0; i < 3; i++) t.equal((await browser.post('/app/login/two-factor', { code: '00000' + String(i) })).statusCode, 401)
    const limited = await browser.post('/app/login/two-factor', { code: await codeAt(secret, 1) })
    t.equal(limited.statusCode, 429)
    t.match(shown(limited), 'Too many requests')
    t.ok(limited.headers['retry-after'], 'says when to try again')
  })

  await t.test('in production without SMTP_URL, the mail forms say mail cannot be sent (503)', async (t) => {
    const app = await buildWeb(t, { NODE_ENV: 'production', SECRET_KEY: 'x'.repeat(40), WEBHOOK_DELIVERY: 'false' })
    const visitor = new PageClient(app)
    await visitor.get('/app/forgot-password')
    const forgot = await visitor.post('/app/forgot-password', { email: 'someone@example.test' })
    t.equal(forgot.statusCode, 503)
    t.match(shown(forgot), 'This server cannot send mail')
    const user = await signUp(app, 'nomail', { email: 'nomail@example.test' })
    await user.client.get('/app/tasks')
    const verification = await user.client.post('/app/account/email-verification', { return_to: '/app/tasks' })
    t.equal(verification.statusCode, 503)
    t.match(shown(verification), 'This server cannot send mail')
  })
})
