import tap from 'tap'
import { eq } from 'drizzle-orm'
import { users } from '../../src/db/schema.js'
import { assertProblem, createUser } from '../helper.js'
import { bearer, buildProbe, createAdmin, login } from './support.js'

tap.test('the admin from ADMIN_USERNAME/ADMIN_PASSWORD is created at start, once, and an existing user is left alone', async (t) => {
  const username = `boot_${Date.now().toString(36)}`
  const env = { ADMIN_USERNAME: username, ADMIN_PASSWORD: 'operator-chosen-secret' }
  const first = await buildProbe(t, env)
  const res = await login(first.app, username, 'operator-chosen-secret')
  t.equal(res.statusCode, 200)
  t.equal(res.json().scope, 'tasks:read tasks:write admin')
  t.match(first.logs(), /"event":"auth\.admin_bootstrapped"/)
  t.notMatch(first.logs(), /operator-chosen-secret/)

  // Changed by its owner, then the app restarts with the same environment: nothing is reset.
  await first.app.inject({ method: 'POST', url: '/v1/users/me/password', headers: bearer(res.json().access_token), payload: { current_password: 'operator-chosen-secret', new_password: 'changed by the owner' } })
  const second = await buildProbe(t, env)
  t.equal((await login(second.app, username, 'changed by the owner')).statusCode, 200)
  t.equal((await login(second.app, username, 'operator-chosen-secret')).statusCode, 401)
  t.notMatch(second.logs(), /"event":"auth\.admin_bootstrapped"/)

  // An existing plain user of that name is not promoted.
  const plain = await createUser(second.app)
  const third = await buildProbe(t, { ADMIN_USERNAME: plain.username, ADMIN_PASSWORD: 'operator-chosen-secret' })
  const [row] = await third.app.db.select().from(users).where(eq(users.id, plain.id))
  t.equal(row!.role, 'user')
})

tap.test('admin routes: 401 anonymous, 403 for users and for API keys, 200 for admins', async (t) => {
  const { app } = await buildProbe(t)
  const admin = await createAdmin(app)
  const user = await createUser(app)
  const key = (await app.inject({ method: 'POST', url: '/v1/api-keys', headers: bearer(admin.accessToken), payload: { name: 'k', scopes: ['tasks:read'] } })).json().key as string
  const routes = [
    { method: 'GET' as const, url: '/v1/users' },
    { method: 'GET' as const, url: `/v1/users/${user.id}` },
    { method: 'PATCH' as const, url: `/v1/users/${user.id}`, payload: { role: 'user' } },
    { method: 'DELETE' as const, url: '/v1/users/00000000-0000-4000-8000-000000000000' },
  ]
  for (const route of routes) {
    assertProblem(t, await app.inject(route), 401, 'UNAUTHENTICATED')
    assertProblem(t, await app.inject({ ...route, headers: bearer(user.accessToken) }), 403, 'FORBIDDEN')
    assertProblem(t, await app.inject({ ...route, headers: { 'x-api-key': key } }), 403, 'API_KEY_NOT_ALLOWED')
  }
  t.equal((await app.inject({ method: 'GET', url: `/v1/users/${user.id}`, headers: bearer(admin.accessToken) })).json().username, user.username)
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/users/00000000-0000-4000-8000-000000000000', headers: bearer(admin.accessToken) }), 404, 'USER_NOT_FOUND')
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/users/not-a-uuid', headers: bearer(admin.accessToken) }), 400, 'VALIDATION_FAILED')
  assertProblem(t, await app.inject({ method: 'DELETE', url: '/v1/users/00000000-0000-4000-8000-000000000000', headers: bearer(admin.accessToken) }), 404, 'USER_NOT_FOUND')
})

tap.test('GET /v1/users pages newest first with a keyset cursor and a Link header', async (t) => {
  const { app } = await buildProbe(t)
  const admin = await createAdmin(app)
  for (let i = 0; i < 5; i++) await createUser(app, 'page')
  const all = await app.db.select({ id: users.id }).from(users)
  const seen: string[] = []
  let url: string | undefined = '/v1/users?limit=2'
  while (url !== undefined) {
    const res = await app.inject({ method: 'GET', url, headers: bearer(admin.accessToken) })
    t.equal(res.statusCode, 200)
    const page = res.json<{ items: Array<{ id: string, created_at: string }>, next_cursor: string | null }>()
    t.ok(page.items.length <= 2)
    seen.push(...page.items.map((u) => u.id))
    if (page.next_cursor === null) {
      t.notOk(res.headers.link, 'no Link on the last page')
      url = undefined
    } else {
      const link = /^<([^>]+)>; rel="next"$/.exec(String(res.headers.link))
      t.ok(link, 'Link: rel="next"')
      url = link![1]
      // A user created while paging does not shift later pages.
      if (seen.length === 2) await createUser(app, 'late')
    }
  }
  t.equal(new Set(seen).size, seen.length, 'no user twice')
  t.same(seen.sort(), all.map((u) => u.id).sort(), 'every user that existed before paging began, once')
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/users?cursor=bm9wZQ', headers: bearer(admin.accessToken) }), 400, 'INVALID_CURSOR')
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/users?limit=101', headers: bearer(admin.accessToken) }), 400, 'VALIDATION_FAILED')
})

tap.test('PATCH /v1/users/{id}: role and disabled; disabling stops every credential; last admin is protected', async (t) => {
  const { app, logs } = await buildProbe(t)
  await app.db.update(users).set({ role: 'user' }).where(eq(users.role, 'admin'))
  const admin = await createAdmin(app)
  const user = await createUser(app)
  const key = (await app.inject({ method: 'POST', url: '/v1/api-keys', headers: bearer(user.accessToken), payload: { name: 'k', scopes: ['tasks:read'] } })).json().key as string
  t.equal((await app.inject({ method: 'GET', url: '/v1/probe/read', headers: { 'x-api-key': key } })).statusCode, 200, 'the key works (and is now cached)')

  const patch = (id: string, payload: object) => app.inject({ method: 'PATCH', url: `/v1/users/${id}`, headers: bearer(admin.accessToken), payload })
  const disabled = await patch(user.id, { disabled: true })
  t.equal(disabled.statusCode, 200)
  t.equal(disabled.json().disabled, true)
  t.match(logs(), new RegExp(`"event":"users\\.updated_by_admin","userId":"${user.id}","actorId":"${admin.id}","changes":\\{"disabled":true\\}`))
  // On this instance, at once: the cached state was forgotten.
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/probe/read', headers: bearer(user.accessToken) }), 401, 'INVALID_TOKEN')
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/probe/read', headers: { 'x-api-key': key } }), 401, 'INVALID_API_KEY')
  assertProblem(t, await login(app, user.username, user.password), 401, 'INVALID_CREDENTIALS')

  assertProblem(t, await patch(admin.id, { role: 'user' }), 409, 'LAST_ADMIN')
  assertProblem(t, await patch(admin.id, { disabled: true }), 409, 'LAST_ADMIN')
  t.equal((await patch(user.id, { disabled: false, role: 'admin' })).json().role, 'admin')
  const demoted = await patch(admin.id, { role: 'user' })
  t.equal(demoted.json().role, 'user', 'with another admin, demotion is allowed')
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/users', headers: bearer(admin.accessToken) }), 403, 'FORBIDDEN')
  assertProblem(t, await patch(user.id, { role: 'root' }), 403, 'FORBIDDEN')
})

tap.test('another instance sees a disabled user within the auth cache TTL (30 s ≤ 60 s)', async (t) => {
  const { AUTH_CACHE_TTL_MS } = await import('../../src/plugins/app/auth-cache.js')
  t.ok(AUTH_CACHE_TTL_MS <= 60_000)
  const realNow = Date.now.bind(Date)
  let shift = 0
  t.capture(Date, 'now', () => realNow() + shift)
  const a = await buildProbe(t)
  const b = await buildProbe(t)
  const admin = await createAdmin(a.app)
  const user = await createUser(a.app)
  t.equal((await b.app.inject({ method: 'GET', url: '/v1/probe/read', headers: bearer(user.accessToken) })).statusCode, 200, 'B caches the user as active')
  t.equal((await a.app.inject({ method: 'PATCH', url: `/v1/users/${user.id}`, headers: bearer(admin.accessToken), payload: { disabled: true } })).statusCode, 200)
  shift = AUTH_CACHE_TTL_MS + 1
  assertProblem(t, await b.app.inject({ method: 'GET', url: '/v1/probe/read', headers: bearer(user.accessToken) }), 401, 'INVALID_TOKEN')
})

tap.test('DELETE /v1/users/{id} removes the user; the last admin cannot be deleted', async (t) => {
  const { app } = await buildProbe(t)
  await app.db.update(users).set({ role: 'user' }).where(eq(users.role, 'admin'))
  const admin = await createAdmin(app)
  const user = await createUser(app)
  t.equal((await app.inject({ method: 'DELETE', url: `/v1/users/${user.id}`, headers: bearer(admin.accessToken) })).statusCode, 204)
  assertProblem(t, await app.inject({ method: 'GET', url: `/v1/users/${user.id}`, headers: bearer(admin.accessToken) }), 404, 'USER_NOT_FOUND')
  assertProblem(t, await app.inject({ method: 'DELETE', url: `/v1/users/${admin.id}`, headers: bearer(admin.accessToken) }), 409, 'LAST_ADMIN')
})
