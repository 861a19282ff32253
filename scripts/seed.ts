/**
 * `npm run db:seed -- --users 1000 --tasks-per-user 100 --prefix bench --password bench-password`
 *
 * Seeds users PREFIX1..PREFIXN (all with the same password, hashed once) and varied tasks for each,
 * into DATABASE_URL or the embedded database. Every user has an Inbox; `--projects-per-user P` gives
 * each user P−1 projects of their own besides, their tasks spread evenly over all P, and
 * `--members-per-project M` adds the next M−1 users to each of those projects as editors (so a user
 * is a member of P + (P−1)(M−1) projects). `--mfa-users N --totp-secret BASE32` turns two-factor
 * on for PREFIX1..PREFIXN with that TOTP secret, sealed as an enrolment seals it under the keys the
 * service derives from SECRET_KEY or JWT_SECRET (so run it with the service's), and forgets the
 * last step they logged in with. Set-based SQL with deterministic ids, so running it again inserts
 * nothing new; every seeded timestamp lies in 2024, so rows created later through the API can be
 * told apart (and removed with --reset).
 */
import { parseArgs } from 'node:util'
import { sql } from 'drizzle-orm'
import { loadConfig } from '../src/config.js'
import { openConfiguredDatabase } from '../src/db/open.js'
import { queryRows } from '../src/db/client.js'
import { resolveKeyring } from '../src/lib/keys.js'
import { hashPassword } from '../src/lib/passwords.js'
import { sealSecret } from '../src/lib/secret-box.js'

const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '10' },
    'tasks-per-user': { type: 'string', default: '100' },
    prefix: { type: 'string', default: 'demo' },
    password: { type: 'string', default: 'demo-password' },
    'projects-per-user': { type: 'string', default: '1' },
    'members-per-project': { type: 'string', default: '1' },
    'mfa-users': { type: 'string', default: '0' },
    'totp-secret': { type: 'string' },
    reset: { type: 'boolean', default: false },
  },
})
const projectsPerUser = Number(values['projects-per-user'])
const membersPerProject = Number(values['members-per-project'])
const mfaUsers = Number(values['mfa-users'])
const users = Number(values.users)
const tasksPerUser = Number(values['tasks-per-user'])
const prefix = values.prefix
if (!Number.isInteger(users) || users < 1 || users > 1_000_000) throw new Error('--users must be an integer 1..1000000')
if (!Number.isInteger(tasksPerUser) || tasksPerUser < 0 || tasksPerUser > 100_000) throw new Error('--tasks-per-user must be an integer 0..100000')
if (!/^[a-z][a-z0-9_]{0,15}$/.test(prefix)) throw new Error('--prefix must be 1..16 lowercase letters, digits or _, starting with a letter')
if (!Number.isInteger(projectsPerUser) || projectsPerUser < 1 || projectsPerUser > 1000) throw new Error('--projects-per-user must be an integer 1..1000')
if (!Number.isInteger(membersPerProject) || membersPerProject < 1 || membersPerProject > Math.min(users, 100)) throw new Error('--members-per-project must be an integer from 1 to the number of users (at most 100)')
if (values.password.length < 8) throw new Error('--password needs at least 8 characters')
if (!Number.isInteger(mfaUsers) || mfaUsers < 0 || mfaUsers > users) throw new Error('--mfa-users must be an integer from 0 to the number of users')
if (mfaUsers > 0 && !/^[A-Z2-7]{16,}$/.test(values['totp-secret'] ?? '')) throw new Error('--mfa-users needs --totp-secret: base32, at least 16 characters')

// Spread creation times over 2024 whatever the count, so every seeded row predates the API's.
const stepSeconds = 31_000_000 / (users * Math.max(tasksPerUser, 1))
const started = Date.now()
// Bulk inserts of a million rows outlast the service's statement timeout, which is for requests.
const config = loadConfig({ ...process.env, MIGRATE_ON_START: 'true', DB_STATEMENT_TIMEOUT_MS: '0' })
const database = await openConfiguredDatabase(config)
const { db } = database
const passwordHash = await hashPassword(values.password)
// One secret for every two-factor user, so one sealed value serves them all.
const sealedTotpSecret = mfaUsers === 0 ? undefined : sealSecret(values['totp-secret']!, (await resolveKeyring(config, (message) => process.stderr.write(`${message}\n`))).keysFor('totpSecret'))

await db.transaction(async (tx) => {
  await tx.execute(sql`
    insert into users (id, username, password_hash, created_at, updated_at, password_changed_at)
    select md5(${prefix} || '-user-' || u)::uuid, ${prefix} || u, ${passwordHash},
           timestamptz '2024-01-01 00:00:00+00' - u * interval '1 minute',
           timestamptz '2024-01-01 00:00:00+00' - u * interval '1 minute',
           timestamptz '2024-01-01 00:00:00+00' - u * interval '1 minute'
    from generate_series(1, ${users}::int) as u
    on conflict do nothing`)
  // Project 1 of each user is the Inbox; projects 2..P are theirs too, shared with the next M−1 users.
  await tx.execute(sql`
    insert into projects (id, name, is_inbox, owner_id, created_at, updated_at)
    select md5(${prefix} || '-project-' || u || '-' || p)::uuid, case when p = 1 then 'Inbox' else 'Project ' || p end, p = 1,
           md5(${prefix} || '-user-' || u)::uuid,
           timestamptz '2024-01-01 00:00:00+00' - u * interval '1 minute', timestamptz '2024-01-01 00:00:00+00' - u * interval '1 minute'
    from generate_series(1, ${users}::int) as u, generate_series(1, ${projectsPerUser}::int) as p
    on conflict do nothing`)
  await tx.execute(sql`
    insert into project_members (project_id, user_id, role, added_at)
    select md5(${prefix} || '-project-' || u || '-' || p)::uuid, md5(${prefix} || '-user-' || (1 + (u - 1 + k) % ${users}::int))::uuid,
           case when k = 0 then 'owner' else 'editor' end::project_role, timestamptz '2024-01-01 00:00:00+00'
    from generate_series(1, ${users}::int) as u, generate_series(1, ${projectsPerUser}::int) as p, generate_series(0, ${membersPerProject}::int - 1) as k
    where k = 0 or p > 1
    on conflict do nothing`)
  // n numbers tasks globally so users' tasks interleave in time; v varies the other columns.
  await tx.execute(sql`
    insert into tasks (id, project_id, created_by, title, description, completed, completed_at, priority, due_at, tags, created_at, updated_at)
    select md5(${prefix} || '-task-' || s.u || '-' || s.t)::uuid,
           md5(${prefix} || '-project-' || s.u || '-' || (1 + s.t % ${projectsPerUser}::int))::uuid,
           md5(${prefix} || '-user-' || s.u)::uuid,
           (array['Write', 'Review', 'Fix', 'Plan', 'Ship', 'Test', 'Refactor', 'Document', 'Design', 'Call'])[1 + s.v % 10]
             || ' ' || (array['quarterly report', 'invoice batch', 'login flow', 'dashboard', 'release notes',
                              'API docs', 'backlog', 'onboarding guide', 'billing bug', 'team sync'])[1 + (s.v / 10) % 10]
             || ' #' || s.t,
           case when s.v % 3 = 0 then null
                else 'Seeded task ' || s.t || '. ' || repeat('Lorem ipsum dolor sit amet. ', 1 + s.v % 5) end,
           s.v % 4 = 0,
           case when s.v % 4 = 0 then timestamptz '2024-01-01 00:00:00+00' + s.n * ${stepSeconds}::float8 * interval '1 second' + interval '2 hours' end,
           ((array['low', 'medium', 'high'])[1 + (s.v / 7) % 3])::task_priority,
           case when s.v % 5 = 0 then null
                else timestamptz '2025-01-15 09:00:00+00' + (s.v % 400) * interval '1 day' end,
           case (s.v / 3) % 5
                when 0 then '{}'::text[]
                when 1 then array['work']
                when 2 then array['home', 'errand']
                when 3 then array['work', 'q3', 'review']
                else array['urgent'] end,
           timestamptz '2024-01-01 00:00:00+00' + s.n * ${stepSeconds}::float8 * interval '1 second',
           timestamptz '2024-01-01 00:00:00+00' + s.n * ${stepSeconds}::float8 * interval '1 second' + (s.v % 3) * interval '1 hour'
    from (select u, t, (t - 1) * ${users}::int + u as n, u * 7 + t * 13 as v
          from generate_series(1, ${users}::int) as u, generate_series(1, ${tasksPerUser}::int) as t) as s
    on conflict do nothing`)
  if (sealedTotpSecret !== undefined) {
    await tx.execute(sql`
      update users set totp_secret = ${sealedTotpSecret}, mfa_enabled = true, totp_last_step = null
      where id in (select md5(${prefix} || '-user-' || u)::uuid from generate_series(1, ${mfaUsers}::int) as u)`)
  }
  if (values.reset) {
    // Back to the seeded state: drop what the API created for these users since.
    await tx.execute(sql`
      delete from tasks where created_at >= timestamptz '2025-01-01 00:00:00+00'
        and created_by in (select id from users where username ~ ('^' || ${prefix} || '[0-9]+$'))`)
  }
})
for (const table of ['users', 'projects', 'project_members', 'tasks']) await db.execute(sql.raw(`analyze ${table}`))
const [counts] = await queryRows<{ users: number, tasks: number }>(db, sql`
  select (select count(*)::int from users where username ~ ('^' || ${prefix} || '[0-9]+$')) as users,
         (select count(*)::int from tasks t join users u on u.id = t.created_by where u.username ~ ('^' || ${prefix} || '[0-9]+$')) as tasks`)
await database.close()
process.stdout.write(`seeded ${counts!.users} users and ${counts!.tasks} tasks with prefix "${prefix}" (${database.driver}) in ${Date.now() - started} ms\n`)
