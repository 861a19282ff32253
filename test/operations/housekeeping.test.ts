import { randomUUID } from 'node:crypto'
import tap from 'tap'
import { eq } from 'drizzle-orm'
import { idempotencyKeys, refreshTokens } from '../../src/db/schema.js'
import { build, createUser } from '../helper.js'

tap.test('housekeeping deletes expired refresh tokens and idempotency keys, and nothing else', async (t) => {
  const app = await build(t)
  const user = await createUser(app, 'housekeeper')
  const past = new Date(Date.now() - 60_000)
  const future = new Date(Date.now() + 3_600_000)
  const familyId = randomUUID()
  await app.db.insert(refreshTokens).values([
    { userId: user.id, familyId, tokenHash: `expired-${randomUUID()}`, expiresAt: past },
    { userId: user.id, familyId, tokenHash: `live-${randomUUID()}`, expiresAt: future },
  ])
  await app.db.insert(idempotencyKeys).values([
    { userId: user.id, key: 'expired', fingerprint: 'x', responseStatus: 201, responseHeaders: {}, responseBody: {}, expiresAt: past },
    { userId: user.id, key: 'live', fingerprint: 'x', responseStatus: 201, responseHeaders: {}, responseBody: {}, expiresAt: future },
  ])

  await app.runHousekeeping()

  const tokens = await app.db.select({ hash: refreshTokens.tokenHash }).from(refreshTokens).where(eq(refreshTokens.familyId, familyId))
  t.same(tokens.map((r) => r.hash.split('-')[0]), ['live'], 'only the expired refresh token is gone')
  const keys = await app.db.select({ key: idempotencyKeys.key }).from(idempotencyKeys).where(eq(idempotencyKeys.userId, user.id))
  t.same(keys.map((r) => r.key), ['live'], 'only the expired idempotency key is gone')
  const login = await app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refresh_token: user.refreshToken } })
  t.equal(login.statusCode, 200, 'the login\'s own refresh token still works')
})
