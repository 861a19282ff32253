import tap from 'tap'
import { eq } from 'drizzle-orm'
import { apiKeys } from '../../src/db/schema.js'
import { hashToken } from '../../src/repositories/refresh-tokens.js'
import { assertProblem, createUser } from '../helper.js'
import { bearer, buildProbe } from './support.js'

const create = (token: string, payload: object) => ({ method: 'POST' as const, url: '/v1/api-keys', headers: bearer(token), payload })

tap.test('a key is random, prefixed, shown once, stored as SHA-256 only, and works as X-API-Key', async (t) => {
  const { app } = await buildProbe(t)
  const user = await createUser(app)
  const res = await app.inject(create(user.accessToken, { name: 'exporter', scopes: ['tasks:read'] }))
  t.equal(res.statusCode, 201)
  const created = res.json()
  t.match(created.key, /^tk_[A-Za-z0-9_-]{43}$/, '43 base64url characters: 256 random bits')
  t.equal(created.prefix, created.key.slice(0, 11))
  t.match(created, { name: 'exporter', scopes: ['tasks:read'], expires_at: null, last_used_at: null })
  const [row] = await app.db.select().from(apiKeys).where(eq(apiKeys.id, created.id))
  t.equal(row!.keyHash, hashToken(created.key))
  t.notOk(JSON.stringify(row).includes(created.key), 'the key itself is stored nowhere')
  const other = (await app.inject(create(user.accessToken, { name: 'exporter', scopes: ['tasks:read'] }))).json()
  t.not(other.key, created.key)

  const list = await app.inject({ method: 'GET', url: '/v1/api-keys', headers: bearer(user.accessToken) })
  t.equal(list.statusCode, 200)
  t.equal(list.json().items.length, 2)
  t.notOk(list.body.includes(created.key.slice(11)), 'listings never show the secret')
  t.same(Object.keys(list.json().items[0]).sort(), ['client_cert_sha256', 'created_at', 'expires_at', 'id', 'last_used_at', 'name', 'prefix', 'scopes'])

  const used = await app.inject({ method: 'GET', url: '/v1/probe/read', headers: { 'x-api-key': created.key } })
  t.equal(used.statusCode, 200)
  t.same(used.json(), { user: user.id, via: 'api_key' })
})

tap.test('a key holds only its scopes, and can never manage keys or users', async (t) => {
  const { app } = await buildProbe(t)
  const user = await createUser(app)
  const key = (await app.inject(create(user.accessToken, { name: 'ro', scopes: ['tasks:read'] }))).json().key as string
  const headers = { 'x-api-key': key }
  t.equal((await app.inject({ method: 'GET', url: '/v1/probe/read', headers })).statusCode, 200)
  const write = await app.inject({ method: 'GET', url: '/v1/probe/write', headers })
  assertProblem(t, write, 403, 'INSUFFICIENT_SCOPE')
  t.match(write.headers['www-authenticate'], /insufficient_scope/)
  t.equal((await app.inject({ method: 'GET', url: '/v1/users/me', headers })).statusCode, 200, 'reading who you are is fine')
  for (const route of [
    { method: 'POST' as const, url: '/v1/api-keys', payload: { name: 'x', scopes: ['tasks:read'] } },
    { method: 'GET' as const, url: '/v1/api-keys' },
    { method: 'DELETE' as const, url: '/v1/api-keys/00000000-0000-4000-8000-000000000000' },
    { method: 'PATCH' as const, url: '/v1/users/me', payload: { display_name: 'x' } },
    { method: 'POST' as const, url: '/v1/users/me/password', payload: { current_password: user.password, new_password: 'whatever-long-enough' } },
    { method: 'DELETE' as const, url: '/v1/users/me' },
  ]) {
    assertProblem(t, await app.inject({ ...route, headers }), 403, 'API_KEY_NOT_ALLOWED')
  }
  assertProblem(t, await app.inject(create(user.accessToken, { name: 'x', scopes: ['admin'] })), 400, 'VALIDATION_FAILED')
  assertProblem(t, await app.inject(create(user.accessToken, { name: 'x', scopes: [] })), 400, 'VALIDATION_FAILED')
  assertProblem(t, await app.inject(create(user.accessToken, { name: 'x', scopes: ['tasks:read', 'tasks:read'] })), 400, 'VALIDATION_FAILED')
  assertProblem(t, await app.inject(create(user.accessToken, { name: '', scopes: ['tasks:read'] })), 400, 'VALIDATION_FAILED')
  assertProblem(t, await app.inject(create(user.accessToken, { name: 'x', scopes: ['tasks:read'], expires_at: '2000-01-01T00:00:00Z' })), 400, 'VALIDATION_FAILED')
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/probe/read', headers: { ...headers, ...bearer(user.accessToken) } }), 401, 'AMBIGUOUS_CREDENTIALS')
})

tap.test('revoked, expired, unknown and malformed keys are 401; revocation is per owner', async (t) => {
  const { app, logs } = await buildProbe(t)
  const user = await createUser(app)
  const stranger = await createUser(app)
  const revoked = (await app.inject(create(user.accessToken, { name: 'a', scopes: ['tasks:read'] }))).json()
  t.equal((await app.inject({ method: 'GET', url: '/v1/probe/read', headers: { 'x-api-key': revoked.key } })).statusCode, 200)
  assertProblem(t, await app.inject({ method: 'DELETE', url: `/v1/api-keys/${revoked.id}`, headers: bearer(stranger.accessToken) }), 404, 'API_KEY_NOT_FOUND')
  t.equal((await app.inject({ method: 'DELETE', url: `/v1/api-keys/${revoked.id}`, headers: bearer(user.accessToken) })).statusCode, 204)
  assertProblem(t, await app.inject({ method: 'DELETE', url: `/v1/api-keys/${revoked.id}`, headers: bearer(user.accessToken) }), 404, 'API_KEY_NOT_FOUND')
  const after = await app.inject({ method: 'GET', url: '/v1/probe/read', headers: { 'x-api-key': revoked.key } })
  assertProblem(t, after, 401, 'INVALID_API_KEY')
  t.ok(after.headers['www-authenticate'])
  t.equal((await app.inject({ method: 'GET', url: '/v1/api-keys', headers: bearer(user.accessToken) })).json().items.length, 0)

  const soon = (await app.inject(create(user.accessToken, { name: 'b', scopes: ['tasks:read'], expires_at: new Date(Date.now() + 3_600_000).toISOString() }))).json()
  t.ok(soon.expires_at)
  await app.db.update(apiKeys).set({ expiresAt: new Date(Date.now() - 1000) }).where(eq(apiKeys.id, soon.id))
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/probe/read', headers: { 'x-api-key': soon.key } }), 401, 'INVALID_API_KEY')

  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/probe/read', headers: { 'x-api-key': `tk_${'A'.repeat(43)}` } }), 401, 'INVALID_API_KEY')
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/probe/read', headers: { 'x-api-key': 'nonsense' } }), 401, 'INVALID_API_KEY')
  t.match(logs(), /"event":"auth\.api_key_revoked"/)
  t.notMatch(logs(), new RegExp(revoked.key), 'no key in the logs')
})

tap.test('last_used_at is recorded in batches, not written on every request', async (t) => {
  const { app } = await buildProbe(t)
  const user = await createUser(app)
  const key = (await app.inject(create(user.accessToken, { name: 'a', scopes: ['tasks:read'] }))).json()
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ method: 'GET', url: '/v1/probe/read', headers: { 'x-api-key': key.key } })).statusCode, 200)
  const before = await app.inject({ method: 'GET', url: '/v1/api-keys', headers: bearer(user.accessToken) })
  t.equal(before.json().items[0].last_used_at, null, 'no write per request')
  await app.close() // flushes pending uses
  const [row] = await (await buildProbe(t)).app.db.select().from(apiKeys).where(eq(apiKeys.id, key.id))
  t.ok(row!.lastUsedAt, 'written at the flush')
  t.ok(Math.abs(row!.lastUsedAt!.getTime() - Date.now()) < 60_000)
})

tap.test('the flush also runs on its interval', async (t) => {
  const { app } = await buildProbe(t, { API_KEY_USAGE_FLUSH_MS: '200' })
  const user = await createUser(app)
  const key = (await app.inject(create(user.accessToken, { name: 'a', scopes: ['tasks:read'] }))).json()
  await app.inject({ method: 'GET', url: '/v1/probe/read', headers: { 'x-api-key': key.key } })
  await new Promise((resolve) => setTimeout(resolve, 600))
  const list = await app.inject({ method: 'GET', url: '/v1/api-keys', headers: bearer(user.accessToken) })
  t.ok(list.json().items[0].last_used_at)
})
