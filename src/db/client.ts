import { randomUUID } from 'node:crypto'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fillPlaceholders, type Query, type SQL, sql } from 'drizzle-orm'
import { type PgColumn, type PgDatabase, PgDialect, type PgQueryResultHKT, type PgTable } from 'drizzle-orm/pg-core'
import type { PGlite, PGliteOptions } from '@electric-sql/pglite'
import type { Sql, TransactionSql } from 'postgres'
import { ConfigSchema } from '../config.js'
import * as schema from './schema.js'
import { isDatabaseUnavailable, isTransientConflict } from './errors.js'
import { tracePglite, tracePostgres } from './statement-spans.js'
import { timestampSession } from './timestamps.js'

export type Schema = typeof schema
/** The one database type repositories see: the same API on PostgreSQL and on PGlite. */
export type Database = PgDatabase<PgQueryResultHKT, Schema>

/**
 * A statement Drizzle built, run with the values of its placeholders: by the driver itself, or
 * inside `tx` when one is given (a unit of work of several statements).
 */
export type Statement<Row> = (values: Record<string, unknown>, tx?: Database) => Promise<Row[]>

/** A Drizzle query over some executor, with placeholders for its values. */
export interface StatementBuilder {
  toSQL: () => Query
  execute: (values?: Record<string, unknown>) => Promise<unknown>
}

export interface DatabaseHandle {
  db: Database
  driver: 'postgres' | 'pglite'
  /**
   * The statement of a Drizzle query, rendered once and then run by the driver itself: rows come
   * back as objects keyed by the select list's names (alias every SQL expression), without
   * Drizzle's per-column result mapping, which showed in profiles of the hot paths. Select
   * timestamps with `timestampText`: it is text on both drivers, where a bare timestamptz is not
   * (PGlite parses it into a Date, postgres.js under Drizzle leaves it as text). Inside a
   * transaction it runs on the transaction's connection: prepared there too on PostgreSQL, built and
   * run by Drizzle on PGlite.
   */
  compile: <Row>(build: (executor: Database) => StatementBuilder) => Statement<Row>
  /** Answers when the database does; throws otherwise. */
  ping: () => Promise<void>
  /**
   * This instance's connections by state, for metrics: PostgreSQL's own (`active`, `idle`,
   * `idle in transaction`, … from pg_stat_activity); the embedded database's one connection is
   * `active` while a statement or transaction runs or waits for it, else `idle`.
   */
  poolStats: () => Promise<Record<string, number>>
  /** The most connections this handle opens at once: the pool's maximum, 1 for the embedded database. */
  poolMax: number
  /**
   * Subscribes to PostgreSQL notifications on `channel`: `onNotify` runs for each, `onListen` each
   * time the listening session starts or restarts (notifications sent while it was down are lost).
   * Returns the unsubscription.
   */
  listen: (channel: string, onNotify: () => void, onListen: () => void) => Promise<() => Promise<void>>
  /** Sends a notification on `channel` to every session listening to it, on any instance. */
  notify: (channel: string) => Promise<void>
  /** From now on, makes a span of every statement (src/db/statement-spans.ts); for tracing on. Once is enough. */
  traceStatements: () => void
  close: () => Promise<void>
}

/** `traceStatements` of a handle: installs the driver's spans the first time only. */
function once (install: () => void): () => void {
  let installed = false
  return () => {
    if (!installed) install()
    installed = true
  }
}

const dialect = new PgDialect()

/**
 * `run`, run again (three attempts in all) when PostgreSQL ends its transaction as a deadlock's
 * victim or a serialization failure: it rolled back, so running it again is safe. For a statement
 * or unit of work, with no effect outside the database, that locks rows which other writes lock in
 * another order (docs/decisions/0035-creates-batched.md).
 */
export async function retriedOnConflict<T> (run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run()
    } catch (error) {
      if (attempt === 3 || !isTransientConflict(error)) throw error
    }
  }
}

/**
 * A statement written as SQL, for what Drizzle's builders cannot say (an INSERT … SELECT of some
 * columns, say), to be given to `compile`. `render` writes it with `value(name)` wherever a value
 * goes: a placeholder when it is rendered once, the value itself when it runs inside a transaction.
 */
export function sqlStatement (executor: Database, render: (value: (name: string) => unknown) => SQL): StatementBuilder {
  return {
    toSQL: () => dialect.sqlToQuery(render((name) => sql.placeholder(name))),
    // A parameter, not the bare value: Drizzle's sql template would spread an array into a list.
    execute: async (values = {}) => await queryRows(executor, render((name) => sql.param(values[name]))),
  }
}

/**
 * `compile` over a driver's own way of running a statement with positional parameters: `run` in
 * the pool, `runIn` inside a transaction when the driver can (else Drizzle builds and runs it there).
 */
function compiler (
  db: Database,
  run: (text: string, params: unknown[]) => Promise<unknown[]>,
  runIn?: (tx: Database, text: string, params: unknown[]) => Promise<unknown[]>,
): DatabaseHandle['compile'] {
  return <Row>(build: (executor: Database) => StatementBuilder) => {
    const { sql: text, params } = build(db).toSQL()
    return async (values: Record<string, unknown>, tx?: Database) => await (tx === undefined
      ? run(text, fillPlaceholders(params, values))
      : runIn === undefined ? build(tx).execute(values) : runIn(tx, text, fillPlaceholders(params, values))) as Row[]
  }
}

export interface PostgresOptions {
  url: string
  poolMax: number
  statementTimeoutMs: number
  /** Default: the configuration's (DB_CONNECT_TIMEOUT_MS). */
  connectTimeoutMs?: number
  /** Default: the configuration's (DB_ACQUIRE_TIMEOUT_MS). */
  acquireTimeoutMs?: number
  /** Where LISTEN connects, when `url` goes through a pooler that keeps no sessions. Default: `url`. */
  listenUrl?: string
}

/** The longest wait between reconnection attempts, so service resumes soon after the database. */
const MAX_RECONNECT_DELAY_S = 2

/** postgres.js's own jittered exponential backoff, capped at MAX_RECONNECT_DELAY_S instead of 20 s. */
function reconnectDelay (retries: number): number {
  return (0.5 + Math.random() / 2) * Math.min(3 ** retries / 100, MAX_RECONNECT_DELAY_S)
}

/** The parts of a postgres.js query (3.4.9, pinned) that `boundAcquisition` uses. */
interface PendingQuery {
  handler: ((query: PendingQuery) => void) & { debug?: unknown }
  /** Set when the query is handed to a connection. */
  state: unknown
  cancelled: unknown
  cancel: () => void
}

function expire (query: PendingQuery): void {
  if (query.state === null && query.cancelled === null) query.cancel()
}

/**
 * postgres.js has no pool acquisition timeout: a query waits for a connection as long as it takes,
 * and while the database is down that includes the reconnection backoff, one queued query per
 * attempt. Here a query the pool cannot hand to a connection at once is cancelled after `ms`: it
 * never ran, and fails as SQLSTATE 57014, which is answered 503. Queries sent at once (the usual
 * case) get no timer. Every query, Drizzle's and transactions' `begin` included, goes through
 * `unsafe`.
 */
function boundAcquisition (client: Sql, ms: number): void {
  const unsafe = client.unsafe.bind(client)
  let guarded: PendingQuery['handler'] | undefined
  client.unsafe = ((...args: Parameters<Sql['unsafe']>) => {
    const query = unsafe(...args) as unknown as PendingQuery
    if (guarded === undefined) {
      const poolHandler = query.handler
      guarded = Object.assign((q: PendingQuery) => {
        poolHandler(q)
        if (q.state === null) setTimeout(expire, ms, q).unref()
      }, { debug: poolHandler.debug })
    }
    query.handler = guarded
    return query
  }) as unknown as Sql['unsafe']
}

export async function openPostgres (options: PostgresOptions): Promise<DatabaseHandle> {
  const { default: postgres } = await import('postgres')
  const { drizzle } = await import('drizzle-orm/postgres-js')
  // A name per instance, so pg_stat_activity tells this instance's connections from others'.
  const applicationName = `tasks-api:${randomUUID().slice(0, 8)}`
  const client = postgres(options.url, {
    max: options.poolMax,
    connect_timeout: (options.connectTimeoutMs ?? ConfigSchema.properties.DB_CONNECT_TIMEOUT_MS.default) / 1000,
    backoff: reconnectDelay,
    idle_timeout: 60,
    onnotice: () => {},
    connection: {
      application_name: applicationName,
      ...timestampSession,
      ...(options.statementTimeoutMs > 0 ? { statement_timeout: options.statementTimeoutMs } : {}),
    },
  })
  boundAcquisition(client, options.acquireTimeoutMs ?? ConfigSchema.properties.DB_ACQUIRE_TIMEOUT_MS.default)
  let listenerClient: Sql | undefined
  const db = drizzle({ client, schema }) as unknown as Database
  return {
    db,
    driver: 'postgres',
    // Named server-side statements, prepared once per connection, in the pool and in transactions
    // alike (a transaction's connection is one of the pool's).
    compile: compiler(
      db,
      async (text, params) => await client.unsafe(text, params as never[], { prepare: true }),
      // Drizzle's postgres.js transaction session holds the transaction's connection as `client`.
      async (tx, text, params) => await (tx._.session as unknown as { client: TransactionSql }).client.unsafe(text, params as never[], { prepare: true }),
    ),
    // Through `unsafe`, so that both are bounded by the acquisition timeout.
    ping: async () => { await client.unsafe('select 1') },
    poolStats: async () => {
      const rows = await client.unsafe<Array<{ state: string, n: number }>>(`
        select coalesce(state, 'unknown') as state, count(*)::int as n from pg_stat_activity
        where application_name = $1 group by 1`, [applicationName])
      return Object.fromEntries(rows.map((r) => [r.state, r.n]))
    },
    poolMax: options.poolMax,
    listen: async (channel, onNotify, onListen) => {
      // A connection of its own, outside the pool (and out of its metrics), which postgres.js reconnects.
      const listener = listenerClient ??= postgres(options.listenUrl ?? options.url, {
        max: 1, backoff: reconnectDelay, onnotice: () => {}, connection: { application_name: `${applicationName}:listen` },
      })
      const { unlisten } = await listener.listen(channel, onNotify, onListen)
      // Unlistening is for a session that goes on; one the server has just closed has nothing left
      // to stop listening to (postgres.js refuses the statement with CONNECTION_CLOSED).
      return async () => { await unlisten().catch((err: unknown) => { if (!isDatabaseUnavailable(err)) throw err }) }
    },
    // A notification commits a transaction of its own; committed without waiting for the disk, it does
    // not queue a flush among the writes' commits. Losing one in a crash loses a wake-up, not data.
    notify: async (channel) => { await client.unsafe('select set_config(\'synchronous_commit\', \'off\', true), pg_notify($1, \'\')', [channel], { prepare: true }) },
    traceStatements: once(() => { tracePostgres(client) }),
    close: async () => {
      await listenerClient?.end({ timeout: 5 })
      await client.end({ timeout: 5 })
    },
  }
}

/** Embedded PostgreSQL: persisted under `dataDir`, or in memory when it is undefined. */
export async function openPglite (dataDir?: string): Promise<DatabaseHandle & { client: PGlite }> {
  const { PGlite } = await import('@electric-sql/pglite')
  const { drizzle } = await import('drizzle-orm/pglite')
  let client: PGlite
  let releaseLock = async () => {}
  if (dataDir === undefined) {
    client = new PGlite(pgliteOptions(PGlite))
  } else {
    await mkdir(dataDir, { recursive: true })
    releaseLock = await lockDataDir(dataDir)
    client = new PGlite(join(dataDir, 'pgdata'), pgliteOptions(PGlite))
  }
  await client.waitReady
  await client.exec(`set time zone '${timestampSession.TimeZone}'; set datestyle to '${timestampSession.DateStyle}'`)
  const busy = countBusy(client)
  const db = drizzle({ client, schema }) as unknown as Database
  return {
    db,
    client,
    driver: 'pglite',
    compile: compiler(db, async (text, params) => (await client.query(text, params)).rows),
    ping: async () => { await db.execute(sql`select 1`) },
    poolStats: async () => busy() > 0 ? { active: 1, idle: 0 } : { active: 0, idle: 1 },
    poolMax: 1,
    listen: async (channel, onNotify, onListen) => {
      const unlisten = await client.listen(channel, onNotify)
      onListen()
      return unlisten
    },
    notify: async (channel) => { await client.query('select pg_notify($1, \'\')', [channel]) },
    traceStatements: once(() => { tracePglite(client) }),
    close: async () => {
      if (!client.closed) await client.close()
      await releaseLock()
    },
  }
}

/**
 * PGlite runs one statement or transaction at a time, queuing the others: every use goes through
 * `query`, `exec` or `transaction` (Drizzle's included), so counting the calls that have not
 * settled tells whether its one connection is in use. Returns that count.
 */
function countBusy (client: PGlite): () => number {
  let pending = 0
  for (const method of ['query', 'exec', 'transaction'] as const) {
    const run = (client[method] as (...args: unknown[]) => Promise<unknown>).bind(client)
    Object.assign(client, {
      [method]: async (...args: unknown[]) => {
        pending += 1
        try {
          return await run(...args)
        } finally {
          pending -= 1
        }
      },
    })
  }
  return () => pending
}

/**
 * PostgreSQL zeroes all of its shared buffers at every start, and initdb chose 128 MB: the largest
 * single cost of opening the embedded database, and as much resident memory. A development
 * database works in far fewer (the operating system caches its files as well). Given on the
 * command line, so it holds for data directories made before too.
 */
function pgliteOptions (pglite: { defaultStartParams: string[] }): PGliteOptions {
  return { startParams: [...pglite.defaultStartParams, '-c', 'shared_buffers=16MB'] }
}

/**
 * PGlite is one process's database: a second process opening the same directory would corrupt it.
 * A lock file holding the owner's pid turns that mistake into a clear error.
 */
async function lockDataDir (dataDir: string): Promise<() => Promise<void>> {
  const lockFile = join(dataDir, 'pgdata.lock')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(lockFile, String(process.pid), { flag: 'wx' })
      return async () => { await rm(lockFile, { force: true }) }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const owner = Number(await readFile(lockFile, 'utf8').catch(() => ''))
      if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) {
        throw new Error(`The embedded database in ${dataDir} is in use by process ${owner}; stop it first (or set DATABASE_URL).`)
      }
      await rm(lockFile, { force: true }) // left behind by a process that died
    }
  }
  throw new Error(`Could not lock ${lockFile}`)
}

/** Whether a process with this pid exists (one we may not signal counts). */
export function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Deletes the rows of `table` whose `expiresAt` has passed; returns how many, without fetching them. */
export async function deleteExpired (db: Database, table: PgTable, expiresAt: PgColumn): Promise<number> {
  const [row] = await queryRows<{ deleted: number }>(db, sql`
    with purged as (delete from ${table} where ${expiresAt} <= now() returning 1)
    select count(*)::int as deleted from purged`)
  return row?.deleted ?? 0
}

/** Rows of a raw SQL query; postgres.js answers with an array, PGlite with `{ rows }`. */
export async function queryRows<T> (db: Database, query: SQL): Promise<T[]> {
  const result = await db.execute(query) as unknown
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[]
}
