/**
 * Every tasks route against every status it can answer, as a table, then the rules behind them:
 * defaults, completed_at, ETags and conditional requests, merge patches, idempotent creation.
 */
import { randomUUID } from 'node:crypto'
import tap from 'tap'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import { assertProblem, build, createUser, inboxOf, injectAs, type T } from '../helper.js'

interface Case {
  name: string
  request: (ids: { own: string, others: string }) => InjectOptions
  /** Omit to send no credentials. */
  as?: 'owner' | 'other'
  status: number
  code?: string
}

const tasksUrl = '/v1/tasks'
const taskUrl = (id: string) => `/v1/tasks/${id}`
const missing = randomUUID()

const cases: Case[] = [
  // GET /v1/tasks
  { name: 'list', request: () => ({ method: 'GET', url: tasksUrl }), as: 'owner', status: 200 },
  { name: 'list with every filter', request: () => ({ method: 'GET', url: `${tasksUrl}?completed=false&priority=high&tag=a&tag=b&due_before=2031-01-01T00:00:00Z&due_after=2020-01-01T00:00:00%2B02:00&q=run&sort=-due_at&limit=100` }), as: 'owner', status: 200 },
  { name: 'list, limit 0', request: () => ({ method: 'GET', url: `${tasksUrl}?limit=0` }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'list, limit 101', request: () => ({ method: 'GET', url: `${tasksUrl}?limit=101` }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'list, unknown sort', request: () => ({ method: 'GET', url: `${tasksUrl}?sort=owner` }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'list, unknown parameter', request: () => ({ method: 'GET', url: `${tasksUrl}?complete=true` }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'list, completed=maybe', request: () => ({ method: 'GET', url: `${tasksUrl}?completed=maybe` }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'list, due_before without time zone', request: () => ({ method: 'GET', url: `${tasksUrl}?due_before=2030-01-01T00:00:00` }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'list, empty tag', request: () => ({ method: 'GET', url: `${tasksUrl}?tag=` }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'list, garbage cursor', request: () => ({ method: 'GET', url: `${tasksUrl}?cursor=not-a-cursor` }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'list, forged cursor', request: () => ({ method: 'GET', url: `${tasksUrl}?cursor=${Buffer.from(JSON.stringify([null, missing])).toString('base64url')}.AAAAAAAAAAAAAAAAAAAAAA` }), as: 'owner', status: 400, code: 'INVALID_CURSOR' },
  { name: 'list, anonymous', request: () => ({ method: 'GET', url: tasksUrl }), status: 401, code: 'UNAUTHENTICATED' },
  // POST /v1/tasks
  { name: 'create', request: () => ({ method: 'POST', url: tasksUrl, payload: { title: 'x' } }), as: 'owner', status: 201 },
  { name: 'create, no title', request: () => ({ method: 'POST', url: tasksUrl, payload: {} }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'create, blank title', request: () => ({ method: 'POST', url: tasksUrl, payload: { title: '   ' } }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'create, title of 201', request: () => ({ method: 'POST', url: tasksUrl, payload: { title: 'T'.repeat(201) } }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'create, description of 10001', request: () => ({ method: 'POST', url: tasksUrl, payload: { title: 'x', description: 'd'.repeat(10_001) } }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'create, priority urgent', request: () => ({ method: 'POST', url: tasksUrl, payload: { title: 'x', priority: 'urgent' } }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'create, 21 tags', request: () => ({ method: 'POST', url: tasksUrl, payload: { title: 'x', tags: Array.from({ length: 21 }, (_, i) => `t${i}`) } }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'create, duplicate tags', request: () => ({ method: 'POST', url: tasksUrl, payload: { title: 'x', tags: ['a', 'a'] } }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'create, tag of 51', request: () => ({ method: 'POST', url: tasksUrl, payload: { title: 'x', tags: ['t'.repeat(51)] } }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'create, due_at month 13', request: () => ({ method: 'POST', url: tasksUrl, payload: { title: 'x', due_at: '2030-13-01T00:00:00Z' } }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'create, due_at in year 0', request: () => ({ method: 'POST', url: tasksUrl, payload: { title: 'x', due_at: '0000-01-01T00:00:00Z' } }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'create, due_at offset +23:00', request: () => ({ method: 'POST', url: tasksUrl, payload: { title: 'x', due_at: '2030-01-01T00:00:00+23:00' } }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'create, unknown field', request: () => ({ method: 'POST', url: tasksUrl, payload: { title: 'x', owner_id: missing } }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'create, malformed JSON', request: () => ({ method: 'POST', url: tasksUrl, headers: { 'content-type': 'application/json' }, payload: '{"title": ' }), as: 'owner', status: 400, code: 'MALFORMED_JSON' },
  { name: 'create, Idempotency-Key of 256', request: () => ({ method: 'POST', url: tasksUrl, headers: { 'idempotency-key': 'k'.repeat(256) }, payload: { title: 'x' } }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'create, too large', request: () => ({ method: 'POST', url: tasksUrl, payload: { title: 'x', description: 'd'.repeat(2_000_000) } }), as: 'owner', status: 413, code: 'PAYLOAD_TOO_LARGE' },
  { name: 'create, text/plain', request: () => ({ method: 'POST', url: tasksUrl, headers: { 'content-type': 'text/plain' }, payload: 'title' }), as: 'owner', status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'create, merge-patch+json', request: () => ({ method: 'POST', url: tasksUrl, headers: { 'content-type': 'application/merge-patch+json' }, payload: '{"title":"x"}' }), as: 'owner', status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'create, anonymous', request: () => ({ method: 'POST', url: tasksUrl, payload: { title: 'x' } }), status: 401, code: 'UNAUTHENTICATED' },
  // GET /v1/tasks/{id}
  { name: 'get', request: ({ own }) => ({ method: 'GET', url: taskUrl(own) }), as: 'owner', status: 200 },
  { name: 'get, If-None-Match current', request: ({ own }) => ({ method: 'GET', url: taskUrl(own), headers: { 'if-none-match': '"1"' } }), as: 'owner', status: 304 },
  { name: 'get, If-None-Match stale', request: ({ own }) => ({ method: 'GET', url: taskUrl(own), headers: { 'if-none-match': '"7"' } }), as: 'owner', status: 200 },
  { name: 'get, If-None-Match malformed', request: ({ own }) => ({ method: 'GET', url: taskUrl(own), headers: { 'if-none-match': '1' } }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'get, malformed id', request: () => ({ method: 'GET', url: taskUrl('not-a-uuid') }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'get, missing', request: () => ({ method: 'GET', url: taskUrl(missing) }), as: 'owner', status: 404, code: 'TASK_NOT_FOUND' },
  { name: 'get, someone else\'s', request: ({ others }) => ({ method: 'GET', url: taskUrl(others) }), as: 'owner', status: 404, code: 'TASK_NOT_FOUND' },
  { name: 'get, anonymous', request: ({ own }) => ({ method: 'GET', url: taskUrl(own) }), status: 401, code: 'UNAUTHENTICATED' },
  // PUT /v1/tasks/{id}
  { name: 'replace', request: ({ own }) => ({ method: 'PUT', url: taskUrl(own), payload: { title: 'y' } }), as: 'owner', status: 200 },
  { name: 'replace, no title', request: ({ own }) => ({ method: 'PUT', url: taskUrl(own), payload: { completed: true } }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'replace, stale If-Match', request: ({ own }) => ({ method: 'PUT', url: taskUrl(own), headers: { 'if-match': '"99"' }, payload: { title: 'y' } }), as: 'owner', status: 412, code: 'PRECONDITION_FAILED' },
  { name: 'replace, missing', request: () => ({ method: 'PUT', url: taskUrl(missing), payload: { title: 'y' } }), as: 'owner', status: 404, code: 'TASK_NOT_FOUND' },
  { name: 'replace, someone else\'s', request: ({ others }) => ({ method: 'PUT', url: taskUrl(others), headers: { 'if-match': '*' }, payload: { title: 'y' } }), as: 'owner', status: 404, code: 'TASK_NOT_FOUND' },
  { name: 'replace, text/plain', request: ({ own }) => ({ method: 'PUT', url: taskUrl(own), headers: { 'content-type': 'text/plain' }, payload: 'y' }), as: 'owner', status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'replace, too large', request: ({ own }) => ({ method: 'PUT', url: taskUrl(own), payload: { title: 'x', description: 'd'.repeat(2_000_000) } }), as: 'owner', status: 413, code: 'PAYLOAD_TOO_LARGE' },
  { name: 'replace, anonymous', request: ({ own }) => ({ method: 'PUT', url: taskUrl(own), payload: { title: 'y' } }), status: 401, code: 'UNAUTHENTICATED' },
  // PATCH /v1/tasks/{id}
  { name: 'patch', request: ({ own }) => ({ method: 'PATCH', url: taskUrl(own), payload: { completed: true } }), as: 'owner', status: 200 },
  { name: 'patch, merge-patch+json', request: ({ own }) => ({ method: 'PATCH', url: taskUrl(own), headers: { 'content-type': 'application/merge-patch+json' }, payload: '{"priority":"low"}' }), as: 'owner', status: 200 },
  { name: 'patch, title null', request: ({ own }) => ({ method: 'PATCH', url: taskUrl(own), payload: { title: null } }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'patch, completed "yes"', request: ({ own }) => ({ method: 'PATCH', url: taskUrl(own), payload: { completed: 'yes' } }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'patch, unknown field', request: ({ own }) => ({ method: 'PATCH', url: taskUrl(own), payload: { version: 3 } }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'patch, weak If-Match', request: ({ own }) => ({ method: 'PATCH', url: taskUrl(own), headers: { 'if-match': 'W/"1"' }, payload: { completed: true } }), as: 'owner', status: 412, code: 'PRECONDITION_FAILED' },
  { name: 'patch, missing', request: () => ({ method: 'PATCH', url: taskUrl(missing), payload: { completed: true } }), as: 'owner', status: 404, code: 'TASK_NOT_FOUND' },
  { name: 'patch, someone else\'s', request: ({ others }) => ({ method: 'PATCH', url: taskUrl(others), payload: { title: 'hijacked' } }), as: 'owner', status: 404, code: 'TASK_NOT_FOUND' },
  { name: 'patch, text/plain', request: ({ own }) => ({ method: 'PATCH', url: taskUrl(own), headers: { 'content-type': 'text/plain' }, payload: 'y' }), as: 'owner', status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'patch, too large', request: ({ own }) => ({ method: 'PATCH', url: taskUrl(own), payload: { description: 'd'.repeat(2_000_000) } }), as: 'owner', status: 413, code: 'PAYLOAD_TOO_LARGE' },
  { name: 'patch, anonymous', request: ({ own }) => ({ method: 'PATCH', url: taskUrl(own), payload: { completed: true } }), status: 401, code: 'UNAUTHENTICATED' },
  // DELETE /v1/tasks/{id}
  { name: 'delete, stale If-Match', request: ({ own }) => ({ method: 'DELETE', url: taskUrl(own), headers: { 'if-match': '"99"' } }), as: 'owner', status: 412, code: 'PRECONDITION_FAILED' },
  { name: 'delete, malformed id', request: () => ({ method: 'DELETE', url: taskUrl('123') }), as: 'owner', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'delete, someone else\'s', request: ({ others }) => ({ method: 'DELETE', url: taskUrl(others) }), as: 'owner', status: 404, code: 'TASK_NOT_FOUND' },
  { name: 'delete, anonymous', request: ({ own }) => ({ method: 'DELETE', url: taskUrl(own) }), status: 401, code: 'UNAUTHENTICATED' },
  { name: 'delete', request: ({ own }) => ({ method: 'DELETE', url: taskUrl(own), headers: { 'if-match': '*' } }), as: 'owner', status: 204 },
  { name: 'delete, already deleted', request: ({ own }) => ({ method: 'DELETE', url: taskUrl(own) }), as: 'owner', status: 404, code: 'TASK_NOT_FOUND' },
]

tap.test('route × status matrix', async (t) => {
  const app = await build(t)
  const [owner, other] = [await createUser(app), await createUser(app)]
  const create = async (who: typeof owner) =>
    (await injectAs(app, who, { method: 'POST', url: tasksUrl, payload: { title: 'matrix' } })).json<{ id: string }>().id
  // Each case gets a fresh task, so cases do not depend on one another's writes.
  const others = await create(other)
  let own = await create(owner)
  for (const c of cases) {
    if (c.name !== 'delete, already deleted') own = await create(owner)
    const request = c.request({ own, others })
    const who = c.as === 'owner' ? owner : c.as === 'other' ? other : undefined
    const res = who === undefined ? await app.inject(request) : await injectAs(app, who, request)
    if (c.code === undefined) {
      t.equal(res.statusCode, c.status, `${c.name}: ${c.status} (${res.body.slice(0, 200)})`)
    } else {
      await t.test(`${c.name}: ${c.status} ${c.code}`, async (t) => { assertProblem(t, res, c.status, c.code!) })
    }
  }
  const untouched = await injectAs(app, other, { method: 'GET', url: taskUrl(others) })
  t.match(untouched.json(), { title: 'matrix' }, 'the other user\'s task survived every attempt')
})

async function createTask (app: Awaited<ReturnType<typeof build>>, user: Awaited<ReturnType<typeof createUser>>, payload: object): Promise<LightMyRequestResponse> {
  return await injectAs(app, user, { method: 'POST', url: tasksUrl, payload })
}

tap.test('create applies defaults, answers Location and ETag, and keeps timestamps exact', async (t) => {
  const app = await build(t)
  const user = await createUser(app)
  const res = await createTask(app, user, { title: 'Minimal' })
  t.equal(res.statusCode, 201)
  const task = res.json()
  t.same(Object.keys(task).sort(), ['assignee_id', 'completed', 'completed_at', 'created_at', 'created_by', 'description', 'due_at', 'id', 'priority', 'project_id', 'tags', 'title', 'updated_at'])
  t.match(task, { project_id: await inboxOf(app, user.id), assignee_id: null, created_by: user.id })
  t.match(task, { title: 'Minimal', description: null, completed: false, completed_at: null, priority: 'medium', due_at: null, tags: [] })
  t.equal(res.headers.location, `/v1/tasks/${task.id}`)
  t.equal(res.headers.etag, '"1"')
  t.match(task.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/)
  t.equal(task.updated_at, task.created_at)

  const full = await createTask(app, user, {
    title: 'T'.repeat(200), description: 'd'.repeat(10_000), priority: 'high', due_at: '2030-01-02T03:04:05.123456+02:00',
    tags: Array.from({ length: 20 }, (_, i) => String(i).padStart(50, 'x')), completed: true,
  })
  t.equal(full.statusCode, 201, 'every field at its limit')
  t.equal(full.json().due_at, '2030-01-02T01:04:05.123456Z', 'due_at comes back in UTC with its microseconds')
  t.equal(full.json().completed_at, full.json().created_at, 'created completed: stamped at creation')
  const read = await injectAs(app, user, { method: 'GET', url: taskUrl(task.id) })
  t.same(read.json(), task, 'GET shows what POST answered')
  t.equal(read.headers.etag, '"1"')
})

tap.test('completed stamps and clears completed_at; every write moves updated_at and the ETag', async (t) => {
  const app = await build(t)
  const user = await createUser(app)
  const task = (await createTask(app, user, { title: 'Stamp me', due_at: '2030-01-01T00:00:00Z', tags: ['a'] })).json()
  const patch = async (payload: object, headers: Record<string, string> = {}) =>
    await injectAs(app, user, { method: 'PATCH', url: taskUrl(task.id), headers, payload })

  const done = await patch({ completed: true })
  t.equal(done.headers.etag, '"2"')
  t.ok(done.json().completed_at, 'stamped')
  t.ok(done.json().updated_at > task.updated_at, 'updated_at moved')
  t.match(done.json(), { title: 'Stamp me', due_at: '2030-01-01T00:00:00.000000Z', tags: ['a'] }, 'other fields kept')

  const again = await patch({ completed: true })
  t.equal(again.json().completed_at, done.json().completed_at, 'completing a completed task keeps its stamp')
  t.equal(again.headers.etag, '"3"')
  t.ok(again.json().updated_at > done.json().updated_at)

  const reopened = await patch({ completed: false, due_at: null, description: 'now with text' })
  t.match(reopened.json(), { completed: false, completed_at: null, due_at: null, description: 'now with text', title: 'Stamp me' })

  const replaced = await injectAs(app, user, { method: 'PUT', url: taskUrl(task.id), headers: { 'if-match': reopened.headers.etag as string }, payload: { title: 'Replaced', completed: true } })
  t.equal(replaced.statusCode, 200)
  t.match(replaced.json(), { title: 'Replaced', description: null, priority: 'medium', due_at: null, tags: [], completed: true }, 'PUT resets omitted fields')
  t.ok(replaced.json().completed_at)
  t.equal(replaced.headers.etag, '"5"')
  t.equal(replaced.json().created_at, task.created_at, 'created_at never changes')
})

tap.test('conditional requests follow RFC 9110', async (t) => {
  const app = await build(t)
  const user = await createUser(app)
  const task = (await createTask(app, user, { title: 'Conditional' })).json()
  const get = async (ifNoneMatch: string) => await injectAs(app, user, { method: 'GET', url: taskUrl(task.id), headers: { 'if-none-match': ifNoneMatch } })
  for (const [header, status] of [['"1"', 304], ['W/"1"', 304], ['"0", "1"', 304], ['*', 304], ['"2"', 200], ['W/"2"', 200]] as const) {
    const res = await get(header)
    t.equal(res.statusCode, status, `If-None-Match: ${header} → ${status}`)
    t.equal(res.headers.etag, '"1"', 'ETag sent either way')
    if (status === 304) t.equal(res.body, '', 'no body')
  }
  const patch = async (ifMatch: string) => await injectAs(app, user, { method: 'PATCH', url: taskUrl(task.id), headers: { 'if-match': ifMatch }, payload: { priority: 'high' } })
  t.equal((await patch('W/"1"')).statusCode, 412, 'a weak tag never matches If-Match')
  t.equal((await patch('"2"')).statusCode, 412, 'a future version does not match')
  t.equal((await patch('"7", "1"')).statusCode, 200, 'any tag of a list matches')
  t.equal((await patch('"1"')).statusCode, 412, 'the old version is stale now')
  t.equal((await patch('*')).statusCode, 200, '* matches an existing task')
  const current = await injectAs(app, user, { method: 'GET', url: taskUrl(task.id) })
  t.equal(current.headers.etag, '"3"', 'only the successful writes counted')
  t.equal((await injectAs(app, user, { method: 'DELETE', url: taskUrl(task.id), headers: { 'if-match': '"2"' } })).statusCode, 412)
  t.equal((await injectAs(app, user, { method: 'DELETE', url: taskUrl(task.id), headers: { 'if-match': '"3"' } })).statusCode, 204)
  t.equal((await injectAs(app, user, { method: 'GET', url: taskUrl(task.id) })).statusCode, 404)
})

tap.test('Idempotency-Key replays, refuses another body, and forgets invalid requests', async (t) => {
  const app = await build(t)
  const [user, other] = [await createUser(app), await createUser(app)]
  const post = async (who: typeof user, key: string, payload: object) =>
    await injectAs(app, who, { method: 'POST', url: tasksUrl, headers: { 'idempotency-key': key }, payload })

  const invalid = await post(user, 'key-1', { title: '' })
  assertProblem(t, invalid, 400, 'VALIDATION_FAILED')
  const first = await post(user, 'key-1', { title: 'Pay rent', tags: ['home'] })
  t.equal(first.statusCode, 201, 'a corrected retry with the key of an invalid request succeeds')
  t.notOk(first.headers['idempotent-replayed'])
  const replay = await post(user, 'key-1', { tags: ['home'], title: 'Pay rent' })
  t.equal(replay.statusCode, 201, 'same body in another key order: replayed')
  t.equal(replay.headers['idempotent-replayed'], 'true')
  t.equal(replay.headers.location, first.headers.location)
  t.equal(replay.headers.etag, first.headers.etag)
  t.equal(replay.body, first.body, 'the very same body')

  await injectAs(app, user, { method: 'PATCH', url: first.headers.location as string, payload: { title: 'Changed since' } })
  t.equal((await post(user, 'key-1', { title: 'Pay rent', tags: ['home'] })).body, first.body, 'the replay is the first response, not the current task')

  assertProblem(t, await post(user, 'key-1', { title: 'Pay the rent' }), 422, 'IDEMPOTENCY_KEY_REUSED')
  const others = await post(other, 'key-1', { title: 'Pay rent', tags: ['home'] })
  t.equal(others.statusCode, 201, 'keys are per caller')
  t.notOk(others.headers['idempotent-replayed'])
  t.not(others.json().id, first.json().id)

  const list = await injectAs(app, user, { method: 'GET', url: tasksUrl })
  t.equal(list.json().items.length, 1, 'one task created for all those requests')
})

tap.test('expired idempotency keys are taken over on reuse and purged', async (t) => {
  const app = await build(t)
  const user = await createUser(app)
  const post = async () => await injectAs(app, user, { method: 'POST', url: tasksUrl, headers: { 'idempotency-key': 'old-key' }, payload: { title: 'Water plants' } })
  const first = await post()
  const { sql } = await import('drizzle-orm')
  await app.db.execute(sql`update idempotency_keys set expires_at = now() - interval '1 second', created_at = now() - interval '25 hours' where user_id = ${user.id}`)
  const second = await post()
  t.equal(second.statusCode, 201)
  t.notOk(second.headers['idempotent-replayed'], 'an expired key is not replayed')
  t.not(second.json().id, first.json().id)

  await app.db.execute(sql`update idempotency_keys set expires_at = now() - interval '1 second' where user_id = ${user.id}`)
  t.equal(await app.idempotencyKeysRepository.purgeExpired(), 1, 'the expired key is purged')
  t.equal(await app.idempotencyKeysRepository.purgeExpired(), 0)
})

tap.test('full-text search uses English stemming over title and description', async (t: T) => {
  const app = await build(t)
  const user = await createUser(app)
  await createTask(app, user, { title: 'Running shoes', tags: ['sport'] })
  await createTask(app, user, { title: 'Groceries', description: 'Buy milk before the run' })
  await createTask(app, user, { title: 'Call mum' })
  const search = async (q: string) => (await injectAs(app, user, { method: 'GET', url: `${tasksUrl}?${new URLSearchParams({ q })}&sort=title` })).json().items.map((i: { title: string }) => i.title)
  t.same(await search('run'), ['Groceries', 'Running shoes'])
  t.same(await search('run -milk'), ['Running shoes'])
  t.same(await search('"call mum"'), ['Call mum'])
  t.same(await search('the'), [], 'a stop word alone matches nothing')
})
