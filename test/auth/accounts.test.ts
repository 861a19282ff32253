import tap from 'tap'
import { eq, sql } from 'drizzle-orm'
import { apiKeys, projectMembers, projects, refreshTokens, tasks, users } from '../../src/db/schema.js'
import { assertProblem, createUser, inboxOf } from '../helper.js'
import { bearer, buildProbe, createAdmin } from './support.js'

tap.test('GET /v1/users/me returns the caller without secrets', async (t) => {
  const { app } = await buildProbe(t)
  const user = await createUser(app)
  const res = await app.inject({ method: 'GET', url: '/v1/users/me', headers: bearer(user.accessToken) })
  t.equal(res.statusCode, 200)
  t.same(Object.keys(res.json()).sort(), ['created_at', 'disabled', 'display_name', 'email', 'email_verified', 'id', 'mfa_enabled', 'role', 'updated_at', 'username'])
  t.match(res.json(), { id: user.id, username: user.username, role: 'user', disabled: false, email: null, email_verified: false, mfa_enabled: false, display_name: null })
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/users/me' }), 401, 'UNAUTHENTICATED')
})

tap.test('PATCH /v1/users/me changes display name and email; null clears; unknown fields are 400', async (t) => {
  const { app } = await buildProbe(t)
  const user = await createUser(app)
  const set = await app.inject({ method: 'PATCH', url: '/v1/users/me', headers: bearer(user.accessToken), payload: { display_name: 'Alice L.', email: 'alice@example.com' } })
  t.equal(set.statusCode, 200)
  t.match(set.json(), { display_name: 'Alice L.', email: 'alice@example.com' })
  t.ok(set.json().updated_at > set.json().created_at, 'updated_at moves')
  const clear = await app.inject({ method: 'PATCH', url: '/v1/users/me', headers: bearer(user.accessToken), payload: { email: null } })
  t.match(clear.json(), { display_name: 'Alice L.', email: null })
  assertProblem(t, await app.inject({ method: 'PATCH', url: '/v1/users/me', headers: bearer(user.accessToken), payload: { role: 'admin' } }), 400, 'VALIDATION_FAILED')
  assertProblem(t, await app.inject({ method: 'PATCH', url: '/v1/users/me', headers: bearer(user.accessToken), payload: { email: 'not an email' } }), 400, 'VALIDATION_FAILED')
  assertProblem(t, await app.inject({ method: 'PATCH', url: '/v1/users/me', headers: bearer(user.accessToken), payload: { display_name: 'x'.repeat(101) } }), 400, 'VALIDATION_FAILED')
  assertProblem(t, await app.inject({ method: 'PATCH', url: '/v1/users/me', payload: {} }), 401, 'UNAUTHENTICATED')
})

tap.test('POST /v1/users/me/password: policy, current password, revocation', async (t) => {
  const { app, logs } = await buildProbe(t)
  const user = await createUser(app)
  const change = (body: object) => app.inject({ method: 'POST', url: '/v1/users/me/password', headers: bearer(user.accessToken), payload: body })
  assertProblem(t, await change({ current_password: 'wrong-password', new_password: 'a long new passphrase' }), 403, 'WRONG_CURRENT_PASSWORD')
  assertProblem(t, await change({ current_password: user.password, new_password: 'short' }), 400, 'VALIDATION_FAILED')
  assertProblem(t, await change({ current_password: user.password, new_password: 'x'.repeat(129) }), 400, 'VALIDATION_FAILED')
  const same = assertProblem(t, await change({ current_password: user.password, new_password: user.username.toUpperCase() }), 400, 'VALIDATION_FAILED')
  t.match(same.errors, [{ path: '/new_password' }])
  t.equal((await change({ current_password: user.password, new_password: 'a long new passphrase' })).statusCode, 204)
  t.match(logs(), /"event":"auth\.password_changed"/)
  const old = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: user.username, password: user.password } })
  assertProblem(t, old, 401, 'INVALID_CREDENTIALS')
  const revoked = await app.db.select().from(refreshTokens).where(eq(refreshTokens.userId, user.id))
  t.ok(revoked.every((r) => r.revokedAt !== null), 'every refresh token revoked')
})

tap.test('DELETE /v1/users/me deletes the account and everything it owns', async (t) => {
  const { app } = await buildProbe(t)
  const user = await createUser(app)
  const other = await createUser(app)
  const [mine, theirs] = [await inboxOf(app, user.id), await inboxOf(app, other.id)]
  await app.db.insert(tasks).values([{ projectId: mine, createdBy: user.id, title: 'mine' }, { projectId: theirs, createdBy: other.id, title: 'theirs' }])
  t.equal((await app.inject({ method: 'POST', url: '/v1/api-keys', headers: bearer(user.accessToken), payload: { name: 'k', scopes: ['tasks:read'] } })).statusCode, 201)
  const res = await app.inject({ method: 'DELETE', url: '/v1/users/me', headers: bearer(user.accessToken) })
  t.equal(res.statusCode, 204)
  for (const [table, column] of [[tasks, tasks.createdBy], [projects, projects.ownerId], [projectMembers, projectMembers.userId], [refreshTokens, refreshTokens.userId], [apiKeys, apiKeys.userId], [users, users.id]] as const) {
    const [row] = await app.db.select({ n: sql<number>`count(*)::int` }).from(table).where(eq(column, user.id))
    t.equal(row!.n, 0)
  }
  const [left] = await app.db.select({ n: sql<number>`count(*)::int` }).from(tasks).where(eq(tasks.projectId, theirs))
  t.equal(left!.n, 1, 'nobody else\'s data goes')
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/users/me', headers: bearer(user.accessToken) }), 401, 'INVALID_TOKEN')
  assertProblem(t, await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: user.username, password: user.password } }), 401, 'INVALID_CREDENTIALS')
})

tap.test('the last active admin cannot delete themselves', async (t) => {
  const { app } = await buildProbe(t)
  // Only admins made in this test exist as active admins here: demote any others first.
  await app.db.update(users).set({ role: 'user' }).where(eq(users.role, 'admin'))
  const admin = await createAdmin(app)
  assertProblem(t, await app.inject({ method: 'DELETE', url: '/v1/users/me', headers: bearer(admin.accessToken) }), 409, 'LAST_ADMIN')
  const second = await createAdmin(app)
  t.equal((await app.inject({ method: 'DELETE', url: '/v1/users/me', headers: bearer(admin.accessToken) })).statusCode, 204)
  t.ok(second)
})
