/**
 * Test helpers: a fresh database per test file (a clone of a migrated template on PostgreSQL when
 * TEST_DATABASE_URL is set, else PGlite on a copy of a migrated data directory), the real app built
 * over it, and factories.
 */
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import tap from 'tap'
import type { Sql } from 'postgres'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { and, eq, sql } from 'drizzle-orm'
import { buildApp } from '../src/app.js'
import * as schema from '../src/db/schema.js'
import { createKeyring } from '../src/lib/keys.js'
import { type Config, loadConfig } from '../src/config.js'
import { type DatabaseHandle, isAlive, openPglite, openPostgres, queryRows } from '../src/db/client.js'
import { migrationsFolder, migratePglite, migratePostgres } from '../src/db/migrate.js'
import { projectRoot } from '../src/lib/project-root.js'

/** The `t` a test callback receives. */
export type T = Parameters<Parameters<typeof tap.test>[0]>[0]

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL || undefined
export const databaseKind = TEST_DATABASE_URL === undefined ? 'pglite' : 'postgres'
export const JWT_SECRET = 'test-secret-that-is-at-least-32-bytes-long'

/** Changes whenever a migration does, so a stale template is never reused. */
const migrationsHash = createHash('sha256')
  .update(readdirSync(migrationsFolder, { recursive: true }).map(String).sort()
    .map((f) => f.endsWith('.sql') || f.endsWith('.json') ? readFileSync(join(migrationsFolder, f)) : '').join('\n'))
  .digest('hex').slice(0, 12)

/** A data directory is PGlite's own format: another version may not read it. */
const pgliteVersion = (JSON.parse(readFileSync(join(projectRoot, 'node_modules/@electric-sql/pglite/package.json'), 'utf8')) as { version: string }).version

function withDatabase (url: string, name: string): string {
  const u = new URL(url)
  u.pathname = `/${name}`
  return u.toString()
}

async function adminQuery<R> (fn: (sql: Sql) => Promise<R>): Promise<R> {
  const { default: postgres } = await import('postgres')
  const sql = postgres(TEST_DATABASE_URL!, { max: 1, onnotice: () => {} })
  try { return await fn(sql) } finally { await sql.end({ timeout: 5 }) }
}

/** A new database cloned from a migrated template that is built once per migration set. */
async function createPostgresDatabase (): Promise<{ url: string, drop: () => Promise<void> }> {
  const template = `tasks_api_tpl_${migrationsHash}`
  const name = `tasks_api_test_${randomBytes(6).toString('hex')}`
  await adminQuery(async (sql) => {
    await sql`select pg_advisory_lock(7240311906)`
    try {
      const [exists] = await sql`select 1 from pg_database where datname = ${template}`
      if (exists === undefined) {
        await sql.unsafe(`create database "${template}_building"`)
        await migratePostgres(withDatabase(TEST_DATABASE_URL!, `${template}_building`))
        await sql.unsafe(`alter database "${template}_building" rename to "${template}"`)
      }
      await sql.unsafe(`create database "${name}" template "${template}"`)
    } finally {
      await sql`select pg_advisory_unlock(7240311906)`
    }
  })
  return {
    url: withDatabase(TEST_DATABASE_URL!, name),
    drop: async () => { await adminQuery((sql) => sql.unsafe(`drop database if exists "${name}" with (force)`)) },
  }
}

/** Copies a folder's contents into another: cp(1) does it in half the CPU of Node's file-by-file copies. */
async function copyTree (from: string, to: string): Promise<void> {
  await promisify(execFile)('cp', ['-R', `${from}/.`, to])
}

/**
 * A folder in the temp folder built once per machine by `build` (into the folder it is given), named
 * for what it depends on. One process builds it; the test files starting beside it wait rather than
 * build their own.
 */
async function cachedFolder (name: string, build: (folder: string) => Promise<void>): Promise<string> {
  const folder = join(tmpdir(), 'tasks-api-test', name)
  const lock = `${folder}.lock`
  while (!existsSync(folder)) {
    await mkdir(dirname(folder), { recursive: true })
    const owner = await writeFile(lock, String(process.pid), { flag: 'wx' }).then(() => process.pid, async () => Number(await readFile(lock, 'utf8').catch(() => '')))
    if (owner === process.pid) {
      try {
        const building = `${folder}.${process.pid}`
        await build(building)
        await rename(building, folder)
      } finally {
        await rm(lock, { force: true })
      }
    } else if (Number.isInteger(owner) && owner > 0 && !isAlive(owner)) {
      await rm(lock, { force: true }) // left by a process that died while building
    } else {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  return folder
}

/** Each template's folder, built or found at most once per process, however many are copied at once. */
let emptyTemplate: Promise<string> | undefined
let migratedTemplate: Promise<string> | undefined

/**
 * A DATA_DIR holding an embedded database as its first start leaves it before migrating: what
 * PGlite's initdb wrote, about 4 CPU-s to make and 0.1 to copy.
 */
function emptyTemplateFolder (): Promise<string> {
  return emptyTemplate ??= cachedFolder(`pglite-${pgliteVersion}-empty`, async (folder) => { await (await openPglite(folder)).close() })
}

/**
 * A DATA_DIR holding a migrated embedded database, built once per migration set from the empty one:
 * PGlite starts on a copy of it in about a second of CPU, where initdb and the migrations take
 * several. Its shared_buffers are 16 MB rather than 128: PGlite zeroes them at every start, and a
 * test's data fits in a few. It holds no template databases (template0, template1): the app never
 * creates a database, and without them a copy is 476 files and 26 MB instead of 1 076 and 40.
 */
function migratedTemplateFolder (): Promise<string> {
  // `-r2`: the recipe below, bumped when it changes, so a template built the old way is not reused.
  return migratedTemplate ??= cachedFolder(`pglite-${pgliteVersion}-${migrationsHash}-r2`, async (folder) => {
    await mkdir(folder)
    await copyTree(await emptyTemplateFolder(), folder)
    const handle = await openPglite(folder)
    await migratePglite(handle)
    await handle.client.exec(`alter system set shared_buffers = '16MB'`)
    // One statement each: DROP DATABASE cannot run inside the transaction a multi-statement exec is.
    await handle.client.query(`update pg_database set datistemplate = false where datname in ('template0', 'template1')`)
    await handle.client.query('drop database template0')
    await handle.client.query('drop database template1')
    await handle.close()
  })
}

/** A temporary folder holding a copy of `template`, removed when `t` ends. */
async function copyOf (t: T, template: Promise<string>): Promise<string> {
  const dataDir = await mkdtemp(join(tmpdir(), 'tasks-api-data-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  await copyTree(await template, dataDir)
  return dataDir
}

/** A temporary DATA_DIR holding a copy of the migrated embedded database, removed when `t` ends. */
export async function embeddedDataDir (t: T): Promise<string> {
  return await copyOf(t, migratedTemplateFolder())
}

/**
 * A temporary DATA_DIR holding an embedded database that was never migrated (as its first start
 * finds it after initdb), removed when `t` ends.
 */
export async function unmigratedDataDir (t: T): Promise<string> {
  return await copyOf(t, emptyTemplateFolder())
}

let fileDatabase: Promise<DatabaseHandle> | undefined

/** This test file's database, created on first use and dropped when the file's tests end. */
export async function testDatabase (): Promise<DatabaseHandle> {
  fileDatabase ??= (async () => {
    if (TEST_DATABASE_URL === undefined) {
      const handle = await openPglite(await embeddedDataDir(tap))
      tap.teardown(() => handle.close()) // teardowns run last-in first-out: closed before its folder goes
      return handle
    }
    const { url, drop } = await createPostgresDatabase()
    const handle = await openPostgres({ url, poolMax: 10, statementTimeoutMs: 10_000 })
    tap.teardown(async () => { await handle.close(); await drop() })
    return handle
  })()
  return await fileDatabase
}

/**
 * Environment for a server process of its own: a fresh PostgreSQL database, or a temporary DATA_DIR
 * with a migrated embedded one, both cloned from the templates. Removed when `t` ends (stop the
 * server first).
 */
export async function serverDatabaseEnv (t: T): Promise<Record<string, string>> {
  if (TEST_DATABASE_URL !== undefined) {
    const { url, drop } = await createPostgresDatabase()
    t.teardown(drop)
    return { DATABASE_URL: url }
  }
  return { DATA_DIR: await embeddedDataDir(t) }
}

export function testConfig (overrides: Record<string, string> = {}): Config {
  // Load shedding is off unless a test turns it on: a busy test machine is not an overloaded server.
  return loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', JWT_SECRET, MAX_EVENT_LOOP_DELAY_MS: '0', ...overrides })
}

/** The real app over this file's database, its keys from the configuration, closed when `t` ends. */
export async function build (t: T, overrides: Record<string, string> = {}): Promise<FastifyInstance> {
  const config = testConfig(overrides)
  const app = await buildApp({ config, database: await testDatabase(), keys: createKeyring(config), keepDatabaseOpen: true })
  t.teardown(() => app.close())
  await app.ready()
  return app
}

let counter = 0
/** A username no other test in this file uses. */
export function uniqueName (prefix = 'user'): string {
  counter += 1
  return `${prefix}${counter}_${randomBytes(3).toString('hex')}`
}

export interface TestUser { id: string, username: string, password: string, accessToken: string, refreshToken: string }

/** Signs a new user up and logs them in. */
export async function createUser (app: FastifyInstance, prefix = 'user'): Promise<TestUser> {
  const username = uniqueName(prefix)
  const password = `pw-${randomBytes(8).toString('hex')}`
  const signup = await app.inject({ method: 'POST', url: '/v1/auth/signup', payload: { username, password } })
  if (signup.statusCode !== 201) throw new Error(`signup failed: ${signup.statusCode} ${signup.body}`)
  const login = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username, password } })
  if (login.statusCode !== 200) throw new Error(`login failed: ${login.statusCode} ${login.body}`)
  const tokens = login.json<{ access_token: string, refresh_token: string }>()
  return { id: signup.json<{ id: string }>().id, username, password, accessToken: tokens.access_token, refreshToken: tokens.refresh_token }
}

/** The id of the user's Inbox project. */
export async function inboxOf (app: FastifyInstance, userId: string): Promise<string> {
  const [row] = await app.db.select({ id: schema.projects.id }).from(schema.projects)
    .where(and(eq(schema.projects.ownerId, userId), eq(schema.projects.isInbox, true)))
  if (row === undefined) throw new Error(`user ${userId} has no Inbox`)
  return row.id
}

/**
 * Asserts that task_visibility holds exactly a row per member of each task's project, with the
 * task's created_at (docs/decisions/0036-task-visibility.md): none missing, none extra.
 */
export async function assertVisibilityExact (t: T, app: FastifyInstance): Promise<void> {
  const [row] = await queryRows<{ missing: number, extra: number }>(app.db, sql`
    with expected as (select m.user_id, t.created_at, t.id as task_id from tasks t join project_members m on m.project_id = t.project_id),
      actual as (select user_id, created_at, task_id from task_visibility)
    select (select count(*) from (select * from expected except select * from actual) d)::int as missing,
      (select count(*) from (select * from actual except select * from expected) d)::int as extra`)
  t.equal(row!.missing, 0, 'every member sees every task of the project (task_visibility)')
  t.equal(row!.extra, 0, 'nobody sees a task outside their projects (task_visibility)')
}

/** `app.inject` as `user`. */
export async function injectAs (app: FastifyInstance, user: TestUser, options: InjectOptions): Promise<LightMyRequestResponse> {
  return await app.inject({ ...options, headers: { ...options.headers, authorization: `Bearer ${user.accessToken}` } })
}

/** Asserts a problem+json response with the given status and catalogue code. */
export function assertProblem (t: T, res: LightMyRequestResponse, status: number, code: string): Record<string, unknown> {
  t.equal(res.statusCode, status, `status ${status}`, { body: res.body.slice(0, 500) })
  t.match(res.headers['content-type'], /^application\/problem\+json/, 'problem+json content type')
  const body = res.json<Record<string, unknown>>()
  t.equal(body.code, code, `code ${code}`)
  t.equal(body.status, status, 'status member')
  t.type(body.title, 'string', 'title')
  t.type(body.type, 'string', 'type')
  t.type(body.instance, 'string', 'instance')
  t.equal(body.request_id, res.headers['x-request-id'], 'request_id matches X-Request-Id')
  return body
}
