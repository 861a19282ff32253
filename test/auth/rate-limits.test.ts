import { randomBytes } from 'node:crypto'
import tap from 'tap'
import { Redis } from 'ioredis'
import type { LightMyRequestResponse } from 'fastify'
import { assertProblem, createUser, type T } from '../helper.js'
import { bearer, buildProbe, login } from './support.js'

function assertLimited (t: T, res: LightMyRequestResponse): void {
  assertProblem(t, res, 429, 'RATE_LIMITED')
  t.match(res.headers['retry-after'], /^\d+$/)
  t.ok(Number(res.headers['retry-after']) > 0)
  t.match(res.headers['ratelimit-limit'], /^\d+$/)
  t.equal(res.headers['ratelimit-remaining'], '0')
  t.match(res.headers['ratelimit-reset'], /^\d+$/)
}

tap.test('login, signup, token and refresh are limited per client IP', async (t) => {
  const { app } = await buildProbe(t, { AUTH_RATE_LIMIT_MAX: '3' })
  const from = (remoteAddress: string) => ({ method: 'POST' as const, url: '/v1/auth/login', payload: { username: 'nobody', password: 'whatever1' }, remoteAddress })
  for (let i = 0; i < 3; i++) {
    const res = await app.inject(from('203.0.113.7'))
    t.equal(res.statusCode, 401)
    t.equal(res.headers['ratelimit-remaining'], String(2 - i))
  }
  assertLimited(t, await app.inject(from('203.0.113.7')))
  t.equal((await app.inject(from('203.0.113.8'))).statusCode, 401, 'another IP has its own budget')
  for (const url of ['/v1/auth/signup', '/v1/auth/refresh', '/v1/auth/logout']) {
    for (let i = 0; i < 3; i++) await app.inject({ method: 'POST', url, payload: {}, remoteAddress: '203.0.113.9' })
    assertLimited(t, await app.inject({ method: 'POST', url, payload: {}, remoteAddress: '203.0.113.9' }))
  }
  for (let i = 0; i < 3; i++) await app.inject({ method: 'POST', url: '/v1/auth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'grant_type=x', remoteAddress: '203.0.113.10' })
  const token = await app.inject({ method: 'POST', url: '/v1/auth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'grant_type=x', remoteAddress: '203.0.113.10' })
  assertLimited(t, token)
  t.equal(token.json().error, 'temporarily_unavailable', 'with an RFC 6749 error on the token endpoint')
})

tap.test('behind a proxy (TRUST_PROXY), the client IP comes from X-Forwarded-For', async (t) => {
  const { app } = await buildProbe(t, { AUTH_RATE_LIMIT_MAX: '1', TRUST_PROXY: 'true' })
  const via = (client: string) => app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: 'nobody', password: 'whatever1' }, headers: { 'x-forwarded-for': client } })
  t.equal((await via('198.51.100.1')).statusCode, 401)
  assertLimited(t, await via('198.51.100.1'))
  t.equal((await via('198.51.100.2')).statusCode, 401)
})

tap.test('failed logins are limited per username across IPs; successes do not count', async (t) => {
  const { app, logs } = await buildProbe(t, { LOGIN_FAILURES_MAX: '3' })
  const victim = await createUser(app)
  const bystander = await createUser(app)
  for (let i = 0; i < 3; i++) {
    const res = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: victim.username, password: `guess-${i}-wrong` }, remoteAddress: `192.0.2.${i + 1}` })
    assertProblem(t, res, 401, 'INVALID_CREDENTIALS')
  }
  const blocked = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: victim.username.toUpperCase(), password: victim.password }, remoteAddress: '192.0.2.99' })
  assertLimited(t, blocked)
  const viaToken = await app.inject({
    method: 'POST', url: '/v1/auth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ grant_type: 'password', username: victim.username, password: victim.password }).toString(),
  })
  assertLimited(t, viaToken)
  t.match(logs(), /"event":"auth\.login_throttled"/)
  for (let i = 0; i < 5; i++) t.equal((await login(app, bystander.username, bystander.password)).statusCode, 200)
})

tap.test('each user and each API key has a general budget on the API', async (t) => {
  const { app } = await buildProbe(t, { RATE_LIMIT_MAX: '3' })
  const user = await createUser(app)
  const other = await createUser(app)
  const key = (await app.inject({ method: 'POST', url: '/v1/api-keys', headers: bearer(user.accessToken), payload: { name: 'k', scopes: ['tasks:read'] } })).json().key as string
  for (let i = 0; i < 2; i++) t.equal((await app.inject({ method: 'GET', url: '/v1/probe/read', headers: bearer(user.accessToken) })).statusCode, 200)
  assertLimited(t, await app.inject({ method: 'GET', url: '/v1/users/me', headers: bearer(user.accessToken) }))
  t.equal((await app.inject({ method: 'GET', url: '/v1/probe/read', headers: bearer(other.accessToken) })).statusCode, 200, 'another user is not affected')
  t.equal((await app.inject({ method: 'GET', url: '/v1/probe/read', headers: { 'x-api-key': key } })).statusCode, 200, 'the key has its own budget')
})

tap.test('with REDIS_URL, limits are shared by every instance', async (t) => {
  const prefix = `tasks-api-test:${randomBytes(6).toString('hex')}:`
  const redis = new Redis('redis://127.0.0.1:6379')
  t.teardown(async () => {
    const keys = await redis.keys(`${prefix}*`)
    if (keys.length > 0) await redis.del(...keys)
    await redis.quit()
  })
  const env = { REDIS_URL: 'redis://127.0.0.1:6379', REDIS_KEY_PREFIX: prefix, AUTH_RATE_LIMIT_MAX: '2' }
  const a = await buildProbe(t, env)
  const b = await buildProbe(t, env)
  const attempt = (app: typeof a.app) => app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: 'nobody', password: 'whatever1' } })
  t.equal((await attempt(a.app)).statusCode, 401)
  t.equal((await attempt(b.app)).statusCode, 401)
  assertLimited(t, await attempt(a.app))
  t.ok((await redis.keys(`${prefix}*`)).length > 0, 'the counters are in Redis under the configured prefix')
})
