/** Web sessions: cookie attributes, rotation, logout, expiry, password changes, CSRF and login limits. */
import { sql } from 'drizzle-orm'
import tap from 'tap'
import { hashPassword } from '../../src/lib/passwords.js'
import { uniqueName } from '../helper.js'
import { buildWeb, PageClient, rows, signUp } from './support.js'

const COOKIE = 'tasks_session'

tap.test('the session cookie is HttpOnly, SameSite=Lax, scoped to /app, and Secure only over HTTPS', async (t) => {
  const app = await buildWeb(t, { TRUST_PROXY: 'true' })
  const plain = new PageClient(app)
  const res = await plain.get('/app/login')
  const cookie = res.cookies.find((c) => c.name === COOKIE) as Record<string, unknown> | undefined
  t.ok(cookie, 'a form page starts a session for its CSRF secret')
  t.equal(cookie?.httpOnly, true)
  t.equal(cookie?.sameSite, 'Lax')
  t.equal(cookie?.path, '/app')
  t.notOk(cookie?.secure, 'not Secure over plain HTTP (it would never come back)')

  const proxied = new PageClient(app, { 'x-forwarded-proto': 'https' })
  const secure = (await proxied.get('/app/login')).cookies.find((c) => c.name === COOKIE) as Record<string, unknown> | undefined
  t.equal(secure?.secure, true, 'Secure when the proxy says the request came over HTTPS')

  const api = await app.inject({ method: 'GET', url: '/health/live' })
  t.notOk(api.headers['set-cookie'], 'the API sets no cookie')
})

tap.test('pages that show no form create no session', async (t) => {
  const app = await buildWeb(t)
  const res = await app.inject({ method: 'GET', url: '/app/tasks' })
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/app/login?next=%2Fapp%2Ftasks')
  t.notOk(res.headers['set-cookie'])
  const css = await app.inject({ method: 'GET', url: '/app/static/app.css' })
  t.equal(css.statusCode, 200)
  t.match(css.headers['content-type'], /^text\/css/)
  t.notOk(css.headers['set-cookie'])
})

tap.test('login rotates the session id; logout ends the session', async (t) => {
  const app = await buildWeb(t)
  const { username, password } = await signUp(app)
  const client = new PageClient(app)
  await client.get('/app/login')
  const anonymous = client.cookies.get(COOKIE)!
  const wrong = await client.post('/app/login', { username, password: 'not the password' })
  t.equal(wrong.statusCode, 401)
  t.match(wrong.body, /The username or password is wrong/)
  t.match(wrong.body, new RegExp(`value="${username}"`), 'the username is kept')
  t.notMatch(wrong.body, /not the password/, 'the password is not sent back')

  const ok = await client.post('/app/login', { username, password, next: '/app/api-keys' })
  t.equal(ok.statusCode, 303)
  t.equal(ok.headers.location, '/app/api-keys', 'back to where the visitor wanted to go')
  const loggedIn = client.cookies.get(COOKIE)!
  t.not(loggedIn, anonymous, 'a new session id at login')
  t.equal((await client.get('/app/tasks')).statusCode, 200)

  // The pre-login id is worth nothing now (session fixation).
  const fixated = await app.inject({ method: 'GET', url: '/app/tasks', headers: { cookie: `${COOKIE}=${anonymous}` } })
  t.equal(fixated.statusCode, 303)

  await client.get('/app/tasks')
  const out = await client.post('/app/logout')
  t.equal(out.statusCode, 303)
  t.equal(out.headers.location, '/app/login?reason=logged_out')
  t.notOk(client.cookies.has(COOKIE), 'the cookie is cleared')
  const replayed = await app.inject({ method: 'GET', url: '/app/tasks', headers: { cookie: `${COOKIE}=${loggedIn}` } })
  t.equal(replayed.statusCode, 303, 'the logged-out session id no longer works')
  t.match(replayed.headers.location, /^\/app\/login/)
  const page = await new PageClient(app).get('/app/login?reason=logged_out')
  t.match(page.body, /You are logged out/)
})

tap.test('open redirects are refused after login', async (t) => {
  const app = await buildWeb(t)
  const { username, password } = await signUp(app)
  const client = new PageClient(app)
  await client.get('/app/login')
  const res = await client.post('/app/login', { username, password, next: 'https://evil.example/' })
  t.equal(res.headers.location, '/app/tasks')
})

tap.test('idle and absolute expiry end a session', async (t) => {
  const app = await buildWeb(t, { SESSION_IDLE_TTL: '600', SESSION_ABSOLUTE_TTL: '3600' })
  const user = await signUp(app)
  const [row] = await rows<{ idle: number, absolute: number }>(app, sql`
    select extract(epoch from expires_at - now())::int as idle, extract(epoch from absolute_expires_at - created_at)::int as absolute
    from sessions where user_id = (select id from users where username = ${user.username})`)
  t.ok(row!.idle > 590 && row!.idle <= 600, 'idle expiry from SESSION_IDLE_TTL')
  t.equal(row!.absolute, 3600, 'absolute expiry from SESSION_ABSOLUTE_TTL')
  const [stored] = await rows<{ id_hash: string }>(app, sql`select id_hash from sessions where user_id = (select id from users where username = ${user.username})`)
  t.not(stored!.id_hash, user.client.cookies.get(COOKIE)!.split('.')[0], 'only a hash of the id is stored')

  await app.db.execute(sql`update sessions set expires_at = now() - interval '1 second' where user_id = (select id from users where username = ${user.username})`)
  const idle = await user.client.get('/app/tasks')
  t.equal(idle.statusCode, 303)
  t.equal(idle.headers.location, '/app/login?next=%2Fapp%2Ftasks&reason=expired')
  t.match((await user.client.get(idle.headers.location!)).body, /Your session has expired/)

  const again = await signUp(app)
  t.equal((await again.client.get('/app/tasks')).statusCode, 200)
  await app.db.execute(sql`update sessions set absolute_expires_at = now() where user_id = (select id from users where username = ${again.username})`)
  t.equal((await again.client.get('/app/tasks')).statusCode, 303, 'however active, the session ends at its absolute expiry')
})

tap.test('a password change ends every session of the user', async (t) => {
  const app = await buildWeb(t)
  const user = await signUp(app)
  const other = new PageClient(app)
  await other.get('/app/login')
  await other.post('/app/login', { username: user.username, password: user.password })
  t.equal((await other.get('/app/tasks')).statusCode, 200)

  await user.client.get('/app/account')
  const wrong = await user.client.post('/app/account/password', { current_password: 'wrong', new_password: 'short' })
  t.equal(wrong.statusCode, 400)
  t.match(wrong.body, /id="current_password-error"/)
  t.match(wrong.body, /id="new_password-error"/)
  t.match(wrong.body, /aria-describedby="new_password-hint new_password-error" aria-invalid="true"/)

  const newPassword = 'a brand new password'
  const changed = await user.client.post('/app/account/password', { current_password: user.password, new_password: newPassword })
  t.equal(changed.statusCode, 303)
  t.equal(changed.headers.location, '/app/login?reason=password_changed')
  const ended = await other.get('/app/tasks')
  t.equal(ended.statusCode, 303, 'the other browser is logged out too')
  t.match(ended.headers.location, /reason=ended|reason=expired/)

  const client = new PageClient(app)
  await client.get('/app/login')
  t.equal((await client.post('/app/login', { username: user.username, password: user.password })).statusCode, 401, 'the old password is refused')
  t.equal((await client.post('/app/login', { username: user.username, password: newPassword })).statusCode, 303)
})

tap.test('a password changed elsewhere, or a disabled account, ends the session at the next page', async (t) => {
  const app = await buildWeb(t)
  const user = await signUp(app)
  await app.db.execute(sql`update users set password_hash = ${await hashPassword('changed elsewhere')}, password_changed_at = now() where username = ${user.username}`)
  const res = await user.client.get('/app/tasks')
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/app/login?next=%2Fapp%2Ftasks&reason=ended')

  const disabled = await signUp(app)
  await app.db.execute(sql`update users set disabled = true where username = ${disabled.username}`)
  t.equal((await disabled.client.get('/app/tasks')).statusCode, 303)
})

tap.test('every form needs a CSRF token of its own session', async (t) => {
  const app = await buildWeb(t)
  const user = await signUp(app)
  await user.client.get('/app/tasks/new')
  const missing = await user.client.post('/app/tasks', { _csrf: '', title: 'Forged' })
  t.equal(missing.statusCode, 403)
  t.match(missing.headers['content-type'], /^text\/html/)
  t.match(missing.body, /This form has expired or was not sent from this site/)
  t.match(missing.body, missing.headers['x-request-id'] as string, 'the page shows the request id')

  const attacker = await signUp(app, 'attacker')
  await attacker.client.get('/app/tasks/new')
  const foreign = await user.client.post('/app/tasks', { _csrf: attacker.client.csrf!, title: 'Forged' })
  t.equal(foreign.statusCode, 403, 'a token from another session is refused')

  const anonymous = new PageClient(app)
  const noSession = await anonymous.post('/app/login', { _csrf: user.client.csrf!, username: user.username, password: user.password })
  t.equal(noSession.statusCode, 403, 'login forms are protected too (login CSRF)')
  const signup = await anonymous.post('/app/signup', { username: uniqueName('csrf'), password: 'long enough password' })
  t.equal(signup.statusCode, 403)

  const list = await user.client.get('/app/tasks')
  t.notMatch(list.body, /Forged/, 'nothing was created')
  t.equal((await user.client.post('/app/logout', { _csrf: 'x' })).statusCode, 403, 'logout is a protected form too')
})

tap.test('sign-up errors re-render the form with the input and a message per field', async (t) => {
  const app = await buildWeb(t)
  const client = new PageClient(app)
  await client.get('/app/signup')
  const res = await client.post('/app/signup', { username: 'a!', password: 'short', email: 'not-an-email' })
  t.equal(res.statusCode, 400)
  t.match(res.body, /<title>Error: Sign up/)
  t.match(res.body, /value="a!"/)
  t.match(res.body, /value="not-an-email"/)
  for (const name of ['username', 'password', 'email']) {
    t.match(res.body, new RegExp(`id="${name}-error"`), `${name} has its message`)
    t.match(res.body, new RegExp(`<a href="#f-${name}">`), `${name} is linked from the summary`)
  }
  const same = await client.post('/app/signup', { username: 'samesame', password: 'SameSame' })
  t.match(same.body, /not your username/)

  const { username } = await signUp(app)
  const taken = await client.post('/app/signup', { username: username.toUpperCase(), password: 'long enough password' })
  t.equal(taken.statusCode, 409)
  t.match(taken.body, /This username is taken/)
})

tap.test('the login form shares the API\'s limits: per IP, and failures per username', async (t) => {
  const app = await buildWeb(t, { AUTH_RATE_LIMIT_MAX: '3' })
  const client = new PageClient(app)
  await client.get('/app/login')
  for (let i = 0; i < 3; i += 1) t.equal((await client.post('/app/login', { username: 'nobody', password: 'wrong password' })).statusCode, 401)
  const limited = await client.post('/app/login', { username: 'nobody', password: 'wrong password' })
  t.equal(limited.statusCode, 429)
  t.match(limited.headers['content-type'], /^text\/html/)
  t.match(limited.headers['retry-after'], /^\d+$/)
  t.match(limited.body, /Too many requests/)
  t.match(limited.body, /You can try again in \d+ seconds/)
  t.match(limited.body, limited.headers['x-request-id'] as string)

  const throttled = await buildWeb(t, { LOGIN_FAILURES_MAX: '2' })
  const user = await signUp(throttled)
  for (let i = 0; i < 2; i += 1) {
    const api = await throttled.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: user.username, password: 'wrong password' } })
    t.equal(api.statusCode, 401)
  }
  const browser = new PageClient(throttled)
  await browser.get('/app/login')
  const res = await browser.post('/app/login', { username: user.username, password: user.password })
  t.equal(res.statusCode, 429, 'failures through the API count for the page')
  t.match(res.body, /Too many failed logins/)
})
