/** The user list's cursors are signed like the tasks' (src/lib/paging.ts): tied to the admin who pages. */
import tap from 'tap'
import { assertProblem, createUser } from '../helper.js'
import { bearer, buildProbe, createAdmin } from './support.js'

tap.test('GET /v1/users: signed cursors, refused when altered, forged or replayed by another admin', async (t) => {
  const { app } = await buildProbe(t)
  const [admin, other] = [await createAdmin(app), await createAdmin(app)]
  for (let i = 0; i < 3; i++) await createUser(app, 'paged')
  const list = async (who: typeof admin, url: string) => await app.inject({ method: 'GET', url, headers: bearer(who.accessToken) })

  const first = await list(admin, '/v1/users?limit=1')
  const cursor = first.json<{ next_cursor: string }>().next_cursor
  t.match(cursor, /^[\w-]+\.[\w-]{22}$/, 'payload and MAC')
  t.equal(first.headers.link, `</v1/users?limit=1&cursor=${cursor}>; rel="next"`)
  t.equal((await list(admin, `/v1/users?limit=2&cursor=${cursor}`)).statusCode, 200, 'another page size is fine')

  assertProblem(t, await list(other, `/v1/users?limit=1&cursor=${cursor}`), 400, 'INVALID_CURSOR')
  const [payload] = cursor.split('.') as [string, string]
  assertProblem(t, await list(admin, `/v1/users?cursor=${payload}`), 400, 'INVALID_CURSOR')
  const position = JSON.parse(Buffer.from(payload, 'base64url').toString()) as [string, string]
  const unsigned = Buffer.from(JSON.stringify(position)).toString('base64url')
  assertProblem(t, await list(admin, `/v1/users?cursor=${unsigned}`), 400, 'INVALID_CURSOR')
  for (let i = 0; i < cursor.length; i++) {
    const altered = cursor.slice(0, i) + (cursor[i] === 'A' ? 'B' : 'A') + cursor.slice(i + 1)
    if ((await list(admin, `/v1/users?limit=1&cursor=${altered}`)).statusCode !== 400) t.fail(`altered character ${i} accepted`)
  }
})

tap.test('GET /v1/users without parameters links to a next page that works', async (t) => {
  const { app } = await buildProbe(t)
  const admin = await createAdmin(app)
  for (let i = 0; i < 21; i++) await createUser(app, 'many')
  const first = await app.inject({ method: 'GET', url: '/v1/users', headers: bearer(admin.accessToken) })
  t.equal(first.json<{ items: unknown[] }>().items.length, 20)
  const link = /^<(\/v1\/users\?cursor=[\w.-]+)>; rel="next"$/.exec(String(first.headers.link))
  t.ok(link, 'the Link carries the cursor and nothing else')
  const second = await app.inject({ method: 'GET', url: link![1]!, headers: bearer(admin.accessToken) })
  t.equal(second.statusCode, 200)
  t.ok(second.json<{ items: unknown[] }>().items.length >= 2)
})
