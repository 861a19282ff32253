import tap from 'tap'
import { buildApp } from '../../src/app.js'
import { createKeyring } from '../../src/lib/keys.js'
import { loggerOptions } from '../../src/logger.js'
import { JWT_SECRET, testConfig, testDatabase } from '../helper.js'

tap.test('logs are JSON lines with request id, route, status and duration, and never hold a secret', async (t) => {
  const lines: string[] = []
  const config = testConfig({ LOG_LEVEL: 'trace' })
  const app = await buildApp({
    config,
    database: await testDatabase(),
    keys: createKeyring({ JWT_SECRET }),
    keepDatabaseOpen: true,
    logger: loggerOptions(config, { write: (line: string) => { lines.push(line) } }),
  })
  t.teardown(() => app.close())

  const password = 'log-secret-password-123'
  const newPassword = 'log-secret-password-456'
  const signup = await app.inject({ method: 'POST', url: '/v1/auth/signup', payload: { username: 'logged_user', password } })
  t.equal(signup.statusCode, 201)
  const login = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: 'logged_user', password } })
  const tokens = login.json<{ access_token: string, refresh_token: string }>()
  const auth = { authorization: `Bearer ${tokens.access_token}` }
  const refreshed = await app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refresh_token: tokens.refresh_token } })
  t.equal(refreshed.statusCode, 200)
  const form = await app.inject({
    method: 'POST', url: '/v1/auth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: `grant_type=password&username=logged_user&password=${password}`,
  })
  t.equal(form.statusCode, 200)
  const key = await app.inject({ method: 'POST', url: '/v1/api-keys', headers: auth, payload: { name: 'ci', scopes: ['tasks:read'] } })
  t.equal(key.statusCode, 201)
  const apiKey = key.json<{ key: string }>().key
  t.equal((await app.inject({ method: 'GET', url: '/v1/tasks', headers: { 'x-api-key': apiKey } })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/v1/tasks', headers: { 'x-api-key': `${apiKey}x` } })).statusCode, 401)
  const change = await app.inject({ method: 'POST', url: '/v1/users/me/password', headers: auth, payload: { current_password: password, new_password: newPassword } })
  t.equal(change.statusCode, 204)
  await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: 'logged_user', password: 'wrong-password-789' } })

  const output = lines.join('')
  for (const [name, secret] of Object.entries({ password, newPassword, access: tokens.access_token, refresh: tokens.refresh_token, refreshed: refreshed.json().refresh_token, apiKey })) {
    t.notOk(output.includes(secret), `the ${name} secret is not in the log`)
  }
  t.notOk(output.includes('wrong-password-789'), 'a wrong password is not in the log either')

  const completed = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request completed')
  t.ok(completed.length >= 8, 'one line per request')
  t.match(completed.find((l) => l.route === '/v1/tasks'), { reqId: String, method: 'GET', route: '/v1/tasks', status: 200, duration_ms: Number })
  t.ok(lines.some((l) => l.includes('"event":"auth.login_failed"')), 'security events are logged')
})

tap.test('secrets inside a logged body or error are redacted', async (t) => {
  const lines: string[] = []
  const { default: pino } = await import('pino')
  // Fastify takes the destination as `stream`; pino itself as its second argument.
  const { stream, ...options } = loggerOptions(testConfig({ LOG_LEVEL: 'info' }), { write: (line: string) => { lines.push(line) } })
  const log = pino(options, stream)
  log.warn({ body: { username: 'ann', password: 'p1', new_password: 'p2', refresh_token: 'r1' } }, 'a body')
  log.error({ err: Object.assign(new Error('boom'), { key: 'tk_secret', access_token: 'a1' }) }, 'an error')
  log.info({ req: { headers: { authorization: 'Bearer a2', 'x-api-key': 'tk_other', cookie: 'sid=s1' } } }, 'a request')
  const output = lines.join('')
  for (const secret of ['p1', 'p2', 'r1', 'tk_secret', 'a1', 'Bearer a2', 'tk_other', 'sid=s1']) t.notOk(output.includes(secret), `${secret} is redacted`)
  t.ok(output.includes('"username":"ann"'), 'other fields are kept')
  t.equal(output.match(/\[redacted\]/g)?.length, 8)
})
