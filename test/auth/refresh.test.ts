import tap from 'tap'
import { eq, sql } from 'drizzle-orm'
import { refreshTokens } from '../../src/db/schema.js'
import { hashToken } from '../../src/repositories/refresh-tokens.js'
import { assertProblem, createUser } from '../helper.js'
import { bearer, buildProbe, createAdmin } from './support.js'

const refresh = (token: string) => ({ method: 'POST' as const, url: '/v1/auth/refresh', payload: { refresh_token: token } })

tap.test('refresh rotates: the new pair works, the old refresh token is single use', async (t) => {
  const { app } = await buildProbe(t)
  const user = await createUser(app)
  const res = await app.inject(refresh(user.refreshToken))
  t.equal(res.statusCode, 200)
  const pair = res.json<{ access_token: string, refresh_token: string, token_type: string, expires_in: number }>()
  t.match(pair, { token_type: 'Bearer', expires_in: 900, refresh_token: /^rt_[A-Za-z0-9_-]{43}$/ })
  t.not(pair.refresh_token, user.refreshToken)
  t.equal((await app.inject({ method: 'GET', url: '/v1/probe/read', headers: bearer(pair.access_token) })).statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  const [stored] = await app.db.select().from(refreshTokens).where(eq(refreshTokens.tokenHash, hashToken(pair.refresh_token)))
  t.ok(stored, 'stored by its SHA-256')
  const plain = await app.db.select().from(refreshTokens).where(eq(refreshTokens.tokenHash, pair.refresh_token))
  t.equal(plain.length, 0, 'never in clear')
})

tap.test('reusing a rotated refresh token revokes the whole family and logs a security event', async (t) => {
  const { app, logs } = await buildProbe(t)
  const user = await createUser(app)
  const second = (await app.inject(refresh(user.refreshToken))).json<{ refresh_token: string }>().refresh_token
  const third = (await app.inject(refresh(second)).then((r) => r.json<{ refresh_token: string }>())).refresh_token

  const reuse = await app.inject(refresh(user.refreshToken))
  assertProblem(t, reuse, 401, 'INVALID_REFRESH_TOKEN')
  t.ok(reuse.headers['www-authenticate'])
  assertProblem(t, await app.inject(refresh(third)), 401, 'INVALID_REFRESH_TOKEN')
  t.match(logs(), /"event":"auth\.refresh_reused"/)
  t.match(logs(), new RegExp(`"level":40[^\\n]*"event":"auth\\.refresh_reused","userId":"${user.id}"`))

  // Another login (another family) is untouched.
  const other = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: user.username, password: user.password } })
  t.equal((await app.inject(refresh(other.json().refresh_token))).statusCode, 200)
})

tap.test('two concurrent refreshes with one token: one wins, the other is a reuse', async (t) => {
  const { app } = await buildProbe(t)
  const user = await createUser(app)
  const results = await Promise.all([app.inject(refresh(user.refreshToken)), app.inject(refresh(user.refreshToken))])
  t.same(results.map((r) => r.statusCode).sort(), [200, 401])
  const winner = results.find((r) => r.statusCode === 200)!.json<{ refresh_token: string }>()
  t.equal((await app.inject(refresh(winner.refresh_token))).statusCode, 401, 'the family is revoked by the reuse')
})

tap.test('expired, unknown and malformed refresh tokens are 401; an access token is no refresh token', async (t) => {
  const { app } = await buildProbe(t)
  const user = await createUser(app)
  await app.db.update(refreshTokens).set({ expiresAt: sql`now() - interval '1 second'` }).where(eq(refreshTokens.tokenHash, hashToken(user.refreshToken)))
  assertProblem(t, await app.inject(refresh(user.refreshToken)), 401, 'INVALID_REFRESH_TOKEN')
  assertProblem(t, await app.inject(refresh('rt_unknown')), 401, 'INVALID_REFRESH_TOKEN')
  assertProblem(t, await app.inject(refresh(user.accessToken)), 401, 'INVALID_REFRESH_TOKEN')
  assertProblem(t, await app.inject({ ...refresh(''), payload: {} }), 400, 'VALIDATION_FAILED')
  assertProblem(t, await app.inject({ ...refresh('x'), payload: { refresh_token: 'x', extra: 1 } }), 400, 'VALIDATION_FAILED')
})

tap.test('a rotated token keeps its family\'s expiry (REFRESH_TOKEN_TTL after login)', async (t) => {
  const { app } = await buildProbe(t, { REFRESH_TOKEN_TTL: '3600' })
  const user = await createUser(app)
  const next = (await app.inject(refresh(user.refreshToken))).json<{ refresh_token: string }>().refresh_token
  const rows = await app.db.select().from(refreshTokens).where(eq(refreshTokens.userId, user.id))
  t.equal(rows.length, 2)
  t.equal(rows[0]!.expiresAt.getTime(), rows[1]!.expiresAt.getTime())
  t.ok(Math.abs(rows[0]!.expiresAt.getTime() - Date.now() - 3_600_000) < 60_000, 'about an hour from now')
  t.ok(next)
})

tap.test('logout revokes the family; it answers 204 for any token', async (t) => {
  const { app } = await buildProbe(t)
  const user = await createUser(app)
  const next = (await app.inject(refresh(user.refreshToken))).json<{ refresh_token: string }>().refresh_token
  const out = await app.inject({ method: 'POST', url: '/v1/auth/logout', payload: { refresh_token: user.refreshToken } })
  t.equal(out.statusCode, 204)
  t.equal(out.body, '')
  assertProblem(t, await app.inject(refresh(next)), 401, 'INVALID_REFRESH_TOKEN')
  t.equal((await app.inject({ method: 'POST', url: '/v1/auth/logout', payload: { refresh_token: 'rt_nobody' } })).statusCode, 204)
})

tap.test('disabling a user revokes their refresh tokens at once; password change revokes all families', async (t) => {
  const { app } = await buildProbe(t)
  const admin = await createAdmin(app)
  const victim = await createUser(app)
  await app.inject({ method: 'PATCH', url: `/v1/users/${victim.id}`, headers: bearer(admin.accessToken), payload: { disabled: true } })
  assertProblem(t, await app.inject(refresh(victim.refreshToken)), 401, 'INVALID_REFRESH_TOKEN')
  await app.inject({ method: 'PATCH', url: `/v1/users/${victim.id}`, headers: bearer(admin.accessToken), payload: { disabled: false } })
  assertProblem(t, await app.inject(refresh(victim.refreshToken)), 401, 'INVALID_REFRESH_TOKEN')

  const user = await createUser(app)
  const second = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: user.username, password: user.password } })
  const change = await app.inject({
    method: 'POST', url: '/v1/users/me/password', headers: bearer(user.accessToken),
    payload: { current_password: user.password, new_password: 'another fine passphrase' },
  })
  t.equal(change.statusCode, 204)
  for (const token of [user.refreshToken, second.json().refresh_token as string]) {
    assertProblem(t, await app.inject(refresh(token)), 401, 'INVALID_REFRESH_TOKEN')
  }
})
