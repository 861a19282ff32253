import { randomBytes } from 'node:crypto'
import tap from 'tap'
import postgres from 'postgres'
import { sql } from 'drizzle-orm'
import { buildApp } from '../../src/app.js'
import { createKeyring } from '../../src/lib/keys.js'
import { openPostgres, queryRows } from '../../src/db/client.js'
import { migratePostgres, latestMigrationMillis } from '../../src/db/migrate.js'
import { rfc3339FromPostgres } from '../../src/db/timestamps.js'
import { build, createUser, injectAs, JWT_SECRET, TEST_DATABASE_URL, testConfig } from '../helper.js'

const onPostgres = { skip: TEST_DATABASE_URL === undefined ? 'needs TEST_DATABASE_URL (real PostgreSQL)' : false }

function databaseUrl (name: string): string {
  const url = new URL(TEST_DATABASE_URL!)
  url.pathname = `/${name}`
  return url.toString()
}

tap.test('instances starting together migrate once, under the advisory lock', onPostgres, async (t) => {
  const name = `tasks_api_migrate_${randomBytes(4).toString('hex')}`
  const admin = postgres(TEST_DATABASE_URL!, { max: 1, onnotice: () => {} })
  await admin.unsafe(`create database "${name}"`)
  t.teardown(async () => {
    await admin.unsafe(`drop database if exists "${name}" with (force)`)
    await admin.end()
  })
  await Promise.all([1, 2, 3, 4].map(() => migratePostgres(databaseUrl(name))))
  const db = postgres(databaseUrl(name), { max: 1, onnotice: () => {} })
  t.teardown(() => db.end())
  const [newest] = await db`select max(created_at)::text as created_at from drizzle.__drizzle_migrations`
  t.equal(Number(newest!.created_at), latestMigrationMillis(), 'every migration applied')
  const tables = await db`select tablename from pg_tables where schemaname = 'public' order by 1`
  t.ok(tables.some((r) => r.tablename === 'users'), 'schema created')
  const perMigration = await db`select created_at, count(*)::int as n from drizzle.__drizzle_migrations group by 1`
  t.ok(perMigration.every((r) => r.n === 1), 'each migration recorded exactly once')
})

tap.test('the service survives its connections being killed and recovers by itself', onPostgres, async (t) => {
  const app = await build(t)
  const user = await createUser(app)
  const admin = postgres(TEST_DATABASE_URL!, { max: 1, onnotice: () => {} })
  t.teardown(() => admin.end())
  // Terminate every connection the app holds to its database (as a PostgreSQL restart would).
  const [current] = await queryRows<{ name: string }>(app.db, sql`select current_database() as name`)
  const databaseName = current!.name
  const killed = await admin`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${databaseName} and pid <> pg_backend_pid()`
  t.ok(killed.length > 0, 'connections were terminated')
  let status = 0
  for (let attempt = 0; attempt < 5 && status !== 200; attempt++) {
    status = (await injectAs(app, user, { method: 'GET', url: '/v1/users/me' })).statusCode
    t.ok(status === 200 || status === 503, `status ${status} is success or a clean 503`)
  }
  t.equal(status, 200, 'recovered')
})

tap.test('PostgreSQL\'s UTC text of a timestamp becomes RFC 3339 with six fractional digits', async (t) => {
  t.equal(rfc3339FromPostgres('2026-11-23T09:30:00+00'), '2026-11-23T09:30:00.000000Z')
  t.equal(rfc3339FromPostgres('2026-11-23T09:30:00.5+00'), '2026-11-23T09:30:00.500000Z')
  t.equal(rfc3339FromPostgres('2026-11-23T09:30:00.12345+00'), '2026-11-23T09:30:00.123450Z')
  t.equal(rfc3339FromPostgres('2026-11-23T09:30:00.000001+00'), '2026-11-23T09:30:00.000001Z')
  t.throws(() => rfc3339FromPostgres('2026-11-23T04:30:00.5-05'), /TimeZone UTC/, 'another time zone is refused, not mistranslated')
  t.throws(() => rfc3339FromPostgres('23/11/2026T09:30:00.5TUTC'), /DateStyle ISO/, 'another date style is refused')
  t.throws(() => rfc3339FromPostgres('2026-11-23T09:30:00.1234567+00'), /Unexpected timestamp/, 'more than six fractional digits are refused')
  t.throws(() => rfc3339FromPostgres('2026-11-23 09:30:00+00'), /Unexpected timestamp/, 'the text must come from timestampText')
})

tap.test('task timestamps are exact whatever time zone and date style the server defaults to', onPostgres, async (t) => {
  const name = `tasks_api_tz_${randomBytes(4).toString('hex')}`
  const admin = postgres(TEST_DATABASE_URL!, { max: 1, onnotice: () => {} })
  await admin.unsafe(`create database "${name}"`)
  await admin.unsafe(`alter database "${name}" set timezone to 'America/New_York'`)
  await admin.unsafe(`alter database "${name}" set datestyle to 'SQL, DMY'`)
  t.teardown(async () => {
    await admin.unsafe(`drop database if exists "${name}" with (force)`)
    await admin.end()
  })
  await migratePostgres(databaseUrl(name))
  const database = await openPostgres({ url: databaseUrl(name), poolMax: 2, statementTimeoutMs: 10_000 })
  const app = await buildApp({ config: testConfig(), database, keys: createKeyring({ JWT_SECRET }) })
  t.teardown(() => app.close())
  const user = await createUser(app)
  const created = await injectAs(app, user, { method: 'POST', url: '/v1/tasks', payload: { title: 'x', due_at: '2030-01-02T03:04:05.1+02:00', completed: true } })
  t.equal(created.statusCode, 201)
  const task = created.json<Record<string, string>>()
  t.equal(task.due_at, '2030-01-02T01:04:05.100000Z', 'due_at in UTC with microseconds')
  for (const field of ['created_at', 'updated_at', 'completed_at']) t.match(task[field], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, field)
  const [stored] = await queryRows<{ created_at: string }>(app.db, sql`select to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as created_at from tasks`)
  t.equal(task.created_at, stored!.created_at, 'created_at is the stored instant to the microsecond')
  const listed = await injectAs(app, user, { method: 'GET', url: '/v1/tasks' })
  t.same(listed.json<{ items: unknown[] }>().items, [task], 'the list shows the same task')
})
