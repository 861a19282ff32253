import type { PGlite, Transaction } from '@electric-sql/pglite'
import type { Sql } from 'postgres'
import { inTrace, type Span, SpanKind, recordFailure, tracer } from '../lib/tracing.js'

/**
 * A span for every database statement, named by what it does (`INSERT tasks`, `SELECT
 * project_members`) in the way of OpenTelemetry's `db.query.summary`: never its text's values,
 * which travel apart as parameters, and not its text either, which is long and says the same.
 * Only statements of traced work get one: the background's polling (webhooks, housekeeping) would
 * otherwise make a trace of a statement every half second. Installed on a handle's driver only
 * when tracing is on.
 */

interface Summary { name: string, operation: string, collection: string | undefined }

/** A table name: quoted or not, schema-qualified or not, and not a function's name. */
const TABLE = String.raw`("[^"]+"|[a-z_][\w.]*)(?![\w.(])`
const WRITTEN = new RegExp(String.raw`\b(insert)\s+into\s+${TABLE}|\b(update)\s+${TABLE}\s+set\b|\b(delete)\s+from\s+${TABLE}`, 'i')
const READ = new RegExp(String.raw`\bfrom\s+${TABLE}`, 'i')
const summaries = new Map<string, Summary>()
/** Statements are few (built once, with placeholders); the bound only guards against a caller that inlines values. */
const MAX_SUMMARIES = 2_000

/** What a statement does: its first write and that write's table, else its verb and the first table it reads. */
export function summarize (text: string): Summary {
  let summary = summaries.get(text)
  if (summary !== undefined) return summary
  const written = WRITTEN.exec(text)
  const verb = /^\s*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? 'QUERY'
  const operation = written === null ? verb : (written[1] ?? written[3] ?? written[5]!).toUpperCase()
  const table = written === null
    ? (verb === 'SELECT' || verb === 'WITH' ? READ.exec(text)?.[1] : undefined)
    : written[2] ?? written[4] ?? written[6]
  const collection = table?.replaceAll('"', '')
  summary = { name: collection === undefined ? operation : `${operation} ${collection}`, operation, collection }
  if (summaries.size < MAX_SUMMARIES) summaries.set(text, summary)
  return summary
}

function statementSpan (text: string): Span | undefined {
  if (!inTrace()) return undefined
  const { name, operation, collection } = summarize(text)
  return tracer.startSpan(name, {
    kind: SpanKind.CLIENT,
    attributes: {
      'db.system.name': 'postgresql',
      'db.query.summary': name,
      'db.operation.name': operation,
      ...(collection === undefined ? {} : { 'db.collection.name': collection }),
    },
  })
}

/** The parts of a postgres.js query (3.4.9, pinned) that settle it. */
interface SettledQuery {
  resolve: (value: unknown) => void
  reject: (err: unknown) => void
}

/** Every statement sent through `sql.unsafe` (Drizzle's, `compile`'s and `begin`'s) gets a span, from its call to its answer. */
function traceUnsafe (sql: Sql): void {
  const unsafe = sql.unsafe.bind(sql)
  sql.unsafe = ((...args: Parameters<Sql['unsafe']>) => {
    const query = unsafe(...args) as unknown as SettledQuery
    const span = statementSpan(args[0])
    if (span === undefined) return query
    const { resolve, reject } = query
    query.resolve = (value) => { span.end(); resolve(value) }
    query.reject = (err) => { recordFailure(span, err); span.end(); reject(err) }
    return query
  }) as unknown as Sql['unsafe']
}

/** Spans for the statements of a postgres.js client: in the pool, and in each transaction's connection. */
export function tracePostgres (client: Sql): void {
  traceUnsafe(client)
  const begin = client.begin.bind(client) as (...args: unknown[]) => Promise<unknown>
  client.begin = ((...args: unknown[]) => {
    const scope = args.pop() as (tx: Sql) => unknown
    return begin(...args, (tx: Sql) => {
      traceUnsafe(tx)
      return scope(tx)
    })
  }) as unknown as Sql['begin']
}

type Queryable = Pick<PGlite | Transaction, 'query' | 'exec'>

function traceQueries (target: Queryable): void {
  for (const method of ['query', 'exec'] as const) {
    const run = (target[method] as (text: string, ...rest: unknown[]) => Promise<unknown>).bind(target)
    Object.assign(target, {
      [method]: async (text: string, ...rest: unknown[]) => {
        const span = statementSpan(text)
        if (span === undefined) return await run(text, ...rest)
        try {
          return await run(text, ...rest)
        } catch (err) {
          recordFailure(span, err)
          throw err
        } finally {
          span.end()
        }
      },
    })
  }
}

/** Spans for the statements of the embedded database, in transactions too. */
export function tracePglite (client: PGlite): void {
  traceQueries(client)
  const transaction = client.transaction.bind(client)
  Object.assign(client, {
    transaction: async <T>(scope: (tx: Transaction) => Promise<T>) => await transaction(async (tx) => {
      traceQueries(tx)
      return await scope(tx)
    }),
  })
}
