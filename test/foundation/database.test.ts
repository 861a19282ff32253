import { randomBytes } from 'node:crypto'
import tap from 'tap'
import postgres from 'postgres'
import { sql } from 'drizzle-orm'
import { queryRows } from '../../src/db/client.js'
import { migratePostgres, latestMigrationMillis } from '../../src/db/migrate.js'
import { build, createUser, injectAs, TEST_DATABASE_URL } from '../helper.js'

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
