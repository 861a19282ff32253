/**
 * Upgrading a database in place: one filled at the migration before projects (tasks with tags and
 * due dates, idempotency records, sessions, API keys, refresh tokens) is migrated to the newest, and
 * nothing is lost or changed; every account gets its Inbox, and every task moves into its owner's,
 * visible to them alone.
 * On the embedded database, and on PostgreSQL when TEST_DATABASE_URL is set.
 */
import { randomBytes } from 'node:crypto'
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tap from 'tap'
import { sql } from 'drizzle-orm'
import { type Database, type DatabaseHandle, openPglite, openPostgres, queryRows } from '../../src/db/client.js'
import { migrationsFolder } from '../../src/db/migrate.js'
import { TEST_DATABASE_URL, type T, unmigratedDataDir } from '../helper.js'

/** The last migration before projects. */
const BEFORE_PROJECTS = '0004_idempotency_responses_required'

/** A copy of the migrations folder whose journal ends at `tag`. */
async function migrationsUntil (tag: string): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), 'tasks-api-migrations-'))
  await cp(migrationsFolder, folder, { recursive: true })
  const journalFile = join(folder, 'meta', '_journal.json')
  const journal = JSON.parse(await readFile(journalFile, 'utf8')) as { entries: Array<{ tag: string }> }
  journal.entries = journal.entries.slice(0, journal.entries.findIndex((entry) => entry.tag === tag) + 1)
  await writeFile(journalFile, JSON.stringify(journal))
  return folder
}

/** A fresh, empty database of the kind under test, and how to migrate it with a given folder. */
async function emptyDatabase (t: T): Promise<{ handle: DatabaseHandle, migrate: (folder: string) => Promise<void> }> {
  if (TEST_DATABASE_URL === undefined) {
    const handle = await openPglite(await unmigratedDataDir(t))
    t.teardown(() => handle.close())
    const { drizzle } = await import('drizzle-orm/pglite')
    const { migrate } = await import('drizzle-orm/pglite/migrator')
    return { handle, migrate: async (folder) => { await migrate(drizzle({ client: handle.client }), { migrationsFolder: folder }) } }
  }
  const { default: postgres } = await import('postgres')
  const name = `tasks_api_upgrade_${randomBytes(6).toString('hex')}`
  const admin = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} })
  await admin.unsafe(`create database "${name}"`)
  const url = new URL(TEST_DATABASE_URL)
  url.pathname = `/${name}`
  const handle = await openPostgres({ url: url.toString(), poolMax: 2, statementTimeoutMs: 0 })
  t.teardown(async () => {
    await handle.close()
    await admin.unsafe(`drop database if exists "${name}" with (force)`)
    await admin.end({ timeout: 5 })
  })
  const { drizzle } = await import('drizzle-orm/postgres-js')
  const { migrate } = await import('drizzle-orm/postgres-js/migrator')
  return {
    handle,
    migrate: async (folder) => {
      const client = postgres(url.toString(), { max: 1, onnotice: () => {} })
      try { await migrate(drizzle({ client }), { migrationsFolder: folder }) } finally { await client.end({ timeout: 5 }) }
    },
  }
}

/** Every row of a table as text, ordered, leaving out the columns an upgrade may add or drop. */
async function rowsOf (db: Database, table: string, order: string, except: string[] = []): Promise<unknown[]> {
  const rows = await queryRows<Record<string, unknown>>(db, sql.raw(`select to_jsonb(r) as row from ${table} r order by ${order}`))
  return rows.map(({ row }) => Object.fromEntries(Object.entries(row as Record<string, unknown>).filter(([column]) => !except.includes(column))))
}

tap.test('an upgrade gives every account its Inbox and moves every task into it, losing and changing nothing', async (t) => {
  const folder = await migrationsUntil(BEFORE_PROJECTS)
  t.teardown(() => rm(folder, { recursive: true, force: true }))
  const { handle, migrate } = await emptyDatabase(t)
  const { db } = handle
  await migrate(folder)

  // Three accounts, one of them without tasks; tasks of every shape, some written several times.
  await db.execute(sql`insert into users (username, email, password_hash, created_at) values
    ('ann', 'ann@example.com', 'hash-a', '2026-01-01T10:00:00.123456Z'), ('bob', null, 'hash-b', '2026-02-01T00:00:00Z'), ('cy', null, 'hash-c', now())`)
  await db.execute(sql`
    insert into tasks (owner_id, title, description, completed, completed_at, priority, due_at, tags, version, created_at, updated_at)
    select u.id, 'Task ' || i, case when i % 2 = 0 then 'about ' || i end, i % 3 = 0, case when i % 3 = 0 then timestamptz '2026-03-01T00:00:00.000001Z' end,
      (array['low', 'medium', 'high'])[1 + i % 3]::task_priority, case when i % 4 <> 0 then timestamptz '2026-12-31T23:59:59.999999Z' - i * interval '1 hour' end,
      case when i % 5 = 0 then '{}'::text[] else array['tag' || i % 7, 'shared'] end, 1 + i % 4,
      timestamptz '2026-01-02' + i * interval '1 minute', timestamptz '2026-01-03' + i * interval '1 second'
    from generate_series(1, 60) i join users u on u.username = case when i % 3 = 0 then 'bob' else 'ann' end`)
  await db.execute(sql`
    insert into idempotency_keys (user_id, key, fingerprint, response_status, response_headers, response_body, expires_at)
    select id, 'key-' || username, 'fp', 201, '{"location": "/v1/tasks/x", "etag": "\\"1\\""}'::jsonb, '{"id": "x", "title": "t"}'::jsonb, now() + interval '1 day' from users`)
  await db.execute(sql`
    insert into sessions (id_hash, user_id, data, expires_at, absolute_expires_at)
    select 'session-' || username, id, '{"csrf": "secret"}'::jsonb, now() + interval '1 hour', now() + interval '1 day' from users`)
  await db.execute(sql`
    insert into api_keys (user_id, name, prefix, key_hash, scopes, expires_at)
    select id, 'ci', 'tak_1234', 'hash-' || username, array['tasks:read'], now() + interval '30 days' from users`)
  await db.execute(sql`
    insert into refresh_tokens (user_id, family_id, token_hash, expires_at)
    select id, gen_random_uuid(), 'refresh-' || username, now() + interval '30 days' from users`)

  const owners = new Map((await queryRows<{ id: string, owner_id: string }>(db, sql`select id, owner_id from tasks`)).map((r) => [r.id, r.owner_id]))
  const before = {
    tasks: await rowsOf(db, 'tasks', 'id', ['owner_id']),
    users: await rowsOf(db, 'users', 'id'),
    idempotency_keys: await rowsOf(db, 'idempotency_keys', 'user_id, key'),
    sessions: await rowsOf(db, 'sessions', 'id_hash'),
    api_keys: await rowsOf(db, 'api_keys', 'id'),
    refresh_tokens: await rowsOf(db, 'refresh_tokens', 'id'),
  }
  t.equal(before.tasks.length, 60)

  await migrate(migrationsFolder)

  t.same(await rowsOf(db, 'tasks', 'id', ['project_id', 'assignee_id', 'created_by']), before.tasks, 'every task, every field, version and timestamps unchanged')
  for (const table of ['users', 'idempotency_keys', 'sessions', 'api_keys', 'refresh_tokens'] as const) {
    // Later migrations add columns (users' email_verified, mfa_enabled…): the ones there before must not change.
    const after = await rowsOf(db, table, table === 'idempotency_keys' ? 'user_id, key' : table === 'sessions' ? 'id_hash' : 'id')
    const columnsBefore = Object.keys((before[table][0] ?? {}) as object)
    const kept = after.map((row) => Object.fromEntries(Object.entries(row as Record<string, unknown>).filter(([column]) => columnsBefore.includes(column))))
    t.same(kept, before[table], `${table} unchanged`)
  }
  const inboxes = await queryRows<{ owner_id: string, id: string, name: string, created_at: string, members: string }>(db, sql`
    select p.owner_id, p.id, p.name, (p.created_at = u.created_at)::text as created_at,
      (select string_agg(m.user_id::text || ':' || m.role, ',') from project_members m where m.project_id = p.id) as members
    from projects p join users u on u.id = p.owner_id where p.is_inbox`)
  t.equal(inboxes.length, 3, 'one Inbox per account, the account without tasks included')
  for (const inbox of inboxes) t.match(inbox, { name: 'Inbox', created_at: 'true', members: `${inbox.owner_id}:owner` }, 'owned by its account, its only member')
  const inboxOf = new Map(inboxes.map((inbox) => [inbox.owner_id, inbox.id]))
  const placed = await queryRows<{ id: string, project_id: string, created_by: string, assignee_id: string | null }>(db, sql`select id, project_id, created_by, assignee_id from tasks`)
  t.ok(placed.every((task) => task.project_id === inboxOf.get(owners.get(task.id)!) && task.created_by === owners.get(task.id) && task.assignee_id === null),
    'each task is in its owner\'s Inbox, made by its owner, unassigned')
  t.equal((await queryRows<{ n: number }>(db, sql`select count(*)::int as n from projects where not is_inbox`))[0]!.n, 0)
  const visible = await queryRows<{ task_id: string, user_id: string, same: boolean }>(db, sql`
    select v.task_id, v.user_id, v.created_at = t.created_at as same from task_visibility v join tasks t on t.id = v.task_id`)
  t.same(visible.map((row) => `${row.task_id}:${row.user_id}:${String(row.same)}`).sort(), [...owners].map(([task, owner]) => `${task}:${owner}:true`).sort(),
    'each task is visible to its owner, and to nobody else (task_visibility)')
})
