/**
 * Races against a real listening server: If-Match writers holding the same ETag, and parallel
 * POSTs with one Idempotency-Key.
 *
 * On PostgreSQL (TEST_DATABASE_URL) the requests run on a pool of connections, so their statements
 * race inside the database, and one subtest makes sure they did. The embedded database runs one
 * statement at a time on its one connection: there the same tests still race the requests through
 * the app (between their statements), which is what the app's own logic must survive, but not the
 * statements themselves.
 */
import tap from 'tap'
import postgres from 'postgres'
import { eq, sql } from 'drizzle-orm'
import { queryRows } from '../../src/db/client.js'
import { tasks } from '../../src/db/schema.js'
import { build, createUser, databaseKind, TEST_DATABASE_URL } from '../helper.js'

tap.test('concurrent writers', async (t) => {
  // No webhook delivery: its background statements would share the pool the writers must fill.
  const app = await build(t, { WEBHOOK_DELIVERY: 'false' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  const base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
  const user = await createUser(app)
  const call = async (method: string, path: string, body?: object, headers: Record<string, string> = {}) => {
    const res = await fetch(base + path, {
      method,
      headers: { authorization: `Bearer ${user.accessToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    return { status: res.status, headers: res.headers, body: await res.text() }
  }

  /** A connection pool of the test's own to the app's PostgreSQL database. */
  const adminConnection = async () => {
    const [database] = await queryRows<{ name: string }>(app.db, sql`select current_database() as name`)
    const url = new URL(TEST_DATABASE_URL!)
    url.pathname = `/${database!.name}`
    return postgres(url.toString(), { max: 2, onnotice: () => {} })
  }
  /**
   * Whether `count` of the app's statements come to wait on a lock within 8 s (before the test
   * pool's 10 s statement timeout); if not, what the app's connections were doing instead.
   */
  const waitForLockWaiters = async (admin: postgres.Sql, count: number) => {
    for (const until = Date.now() + 8_000; Date.now() < until;) {
      const [row] = await admin<[{ n: number }]>`
        select count(*)::int as n from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock' and application_name like 'tasks-api:%'`
      if (row!.n >= count) return row!.n === count
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    const sessions = await admin<Array<{ state: string | null, wait: string | null, query: string }>>`
      select state, wait_event_type || ':' || wait_event as wait, left(query, 120) as query from pg_stat_activity
      where datname = current_database() and application_name like 'tasks-api:%'`
    console.error('the app\'s connections when the writers did not all wait:', JSON.stringify(sessions, null, 1))
    return false
  }

  await t.test('of writers holding the same ETag, exactly one wins each round', async (t) => {
    const task = JSON.parse((await call('POST', '/v1/tasks', { title: 'Contended' })).body) as { id: string }
    for (let round = 1; round <= 5; round++) {
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) =>
        call(i % 2 === 0 ? 'PATCH' : 'PUT', `/v1/tasks/${task.id}`, { title: `writer ${i}`, priority: 'high' }, { 'if-match': `"${round}"` })))
      const statuses = results.map((r) => r.status).sort()
      t.same(statuses, [200, ...Array<number>(9).fill(412)], `round ${round}: one 200, nine 412`)
      const winner = results.find((r) => r.status === 200)!
      t.equal(winner.headers.get('etag'), `"${round + 1}"`)
      const current = await call('GET', `/v1/tasks/${task.id}`)
      t.equal(current.body, winner.body, 'the task is what the winner wrote')
    }
    const deletes = await Promise.all(Array.from({ length: 5 }, () => call('DELETE', `/v1/tasks/${task.id}`, undefined, { 'if-match': '"6"' })))
    t.same(deletes.map((r) => r.status).sort(), [204, 404, 404, 404, 404], 'one delete wins; the task is gone for the others')
  })

  await t.test('writers waiting together on the row: one wins, the others see its version', {
    skip: databaseKind === 'postgres'
      ? false
      : 'PGlite runs one statement at a time on its one connection, so writers never wait on a row lock together; run with TEST_DATABASE_URL',
  }, async (t) => {
    const task = JSON.parse((await call('POST', '/v1/tasks', { title: 'Locked' })).body) as { id: string }
    t.teardown(async () => { await call('DELETE', `/v1/tasks/${task.id}`) }) // the next test counts the user's tasks
    // A connection of its own holds the row locked, so every writer's UPDATE has started and waits.
    const admin = await adminConnection()
    t.teardown(() => admin.end({ timeout: 5 }))
    const locker = await admin.reserve()
    await locker`begin`
    await locker`select 1 from tasks where id = ${task.id} for update`
    // Fewer writers than the test pool's ten connections (test/helper.ts), so that each gets one
    // of its own: with none free, postgres.js sends a query down a busy connection, behind the
    // statement waiting there, where it waits without showing as a lock wait.
    const count = 8
    const writers = Promise.all(Array.from({ length: count }, (_, i) =>
      call(i % 2 === 0 ? 'PATCH' : 'PUT', `/v1/tasks/${task.id}`, { title: `writer ${i}`, priority: 'high' }, { 'if-match': '"1"' })))
    t.ok(await waitForLockWaiters(admin, count), 'every writer was in the database at once, waiting for the row')
    await locker`commit`
    locker.release()
    const results = await writers
    t.same(results.map((r) => r.status).sort(), [200, ...Array<number>(count - 1).fill(412)], 'one 200, the others 412')
    const winner = results.find((r) => r.status === 200)!
    t.equal(winner.headers.get('etag'), '"2"')
    t.equal((await call('GET', `/v1/tasks/${task.id}`)).body, winner.body, 'the task is what the winner wrote')
  })

  await t.test('50 parallel POSTs with one Idempotency-Key create one task', async (t) => {
    const body = { title: 'Exactly once', tags: ['idempotent'] }
    const results = await Promise.all(Array.from({ length: 50 }, () => call('POST', '/v1/tasks', body, { 'idempotency-key': 'parallel-1' })))
    const created = results.filter((r) => r.status === 201)
    const inFlight = results.filter((r) => r.status === 409)
    if (databaseKind === 'postgres') {
      t.equal(created.length + inFlight.length, 50, `only 201 or 409: ${[...new Set(results.map((r) => r.status))].join(',')}`)
      t.ok(inFlight.every((r) => r.headers.get('retry-after') === '1' && r.body.includes('IDEMPOTENCY_IN_FLIGHT')), 'each 409 is IDEMPOTENCY_IN_FLIGHT with Retry-After')
    } else {
      // One transaction at a time: each duplicate starts after the first has committed, and replays it.
      t.equal(created.length, 50, 'the embedded database runs them one after another: every one is a 201')
    }
    t.equal(created.filter((r) => r.headers.get('idempotent-replayed') === null).length, 1, 'one original response')
    t.equal(new Set(created.map((r) => r.body)).size, 1, 'every replay is the original body')
    const rows = await app.db.select({ id: tasks.id }).from(tasks).where(eq(tasks.createdBy, user.id))
    t.equal(rows.filter((r) => created[0]!.body.includes(r.id)).length, 1)
    t.equal(rows.length, 1, 'one task in the database')

    const distinct = await Promise.all(Array.from({ length: 20 }, (_, i) => call('POST', '/v1/tasks', body, { 'idempotency-key': `distinct-${i}` })))
    t.ok(distinct.every((r) => r.status === 201 && r.headers.get('idempotent-replayed') === null), 'distinct keys each create')
    t.equal((await app.db.select({ id: tasks.id }).from(tasks).where(eq(tasks.createdBy, user.id))).length, 21)
  })

  await t.test('a duplicate of a POST still in flight is 409 IDEMPOTENCY_IN_FLIGHT at once, and replays once it has finished', {
    skip: databaseKind === 'postgres'
      ? false
      : 'PGlite runs one transaction at a time, so a duplicate never meets its first request in flight; run with TEST_DATABASE_URL',
  }, async (t) => {
    const admin = await adminConnection()
    t.teardown(() => admin.end({ timeout: 5 }))
    const locker = await admin.reserve()
    // The first request takes its key, then waits to insert its task until the lock goes.
    await locker`begin`
    await locker`lock table tasks in share mode`
    const body = { title: 'In flight' }
    const first = call('POST', '/v1/tasks', body, { 'idempotency-key': 'in-flight-1' })
    t.ok(await waitForLockWaiters(admin, 1), 'the first request is in the database, waiting')

    const duplicate = await call('POST', '/v1/tasks', body, { 'idempotency-key': 'in-flight-1' })
    t.equal(duplicate.status, 409)
    t.equal(duplicate.headers.get('retry-after'), '1')
    t.equal((JSON.parse(duplicate.body) as { code: string }).code, 'IDEMPOTENCY_IN_FLIGHT')
    const other = await call('POST', '/v1/tasks', { title: 'Another body' }, { 'idempotency-key': 'in-flight-1' })
    t.equal(other.status, 409, 'another body under a key in flight is also told to retry: the first has not committed to a body yet')

    await locker`commit`
    locker.release()
    const original = await first
    t.equal(original.status, 201)
    t.equal(original.headers.get('idempotent-replayed'), null)
    const replay = await call('POST', '/v1/tasks', body, { 'idempotency-key': 'in-flight-1' })
    t.equal(replay.status, 201)
    t.equal(replay.headers.get('idempotent-replayed'), 'true')
    t.equal(replay.body, original.body, 'the retry after it finished replays it')
    t.equal(replay.headers.get('location'), original.headers.get('location'))
    t.equal((await call('POST', '/v1/tasks', { title: 'Another body' }, { 'idempotency-key': 'in-flight-1' })).status, 422, 'another body, once it has finished, is 422')
  })

  await t.test('a failed idempotent POST stores nothing, and its key can be used again', async (t) => {
    const before = (await app.db.select({ id: tasks.id }).from(tasks).where(eq(tasks.createdBy, user.id))).length
    const failed = await app.idempotencyKeysRepository.run({ userId: user.id, key: 'rolled-back', fingerprint: 'f' }, async (tx) => {
      await app.tasksRepository.create(user.id, { project_id: null, assignee_id: null, title: 'Never', description: null, priority: 'low', due_at: null, tags: [], completed: false }, tx)
      throw new Error('fails after its write')
    }).catch((err: Error) => err)
    t.match(failed, { message: 'fails after its write' })
    t.equal((await app.db.select({ id: tasks.id }).from(tasks).where(eq(tasks.createdBy, user.id))).length, before, 'the task written before the failure is rolled back')
    const retried = await call('POST', '/v1/tasks', { title: 'Now' }, { 'idempotency-key': 'rolled-back' })
    t.equal(retried.status, 201)
    t.equal(retried.headers.get('idempotent-replayed'), null, 'the key was not kept')
  })
})
