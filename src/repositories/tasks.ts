import { and, asc, desc, eq, type SQL, sql } from 'drizzle-orm'
import type { Database, DatabaseHandle, Statement } from '../db/client.js'
import { searchDocument, tasks } from '../db/schema.js'
import { rfc3339FromPostgres, timestampText } from '../db/timestamps.js'
import { problem } from '../errors.js'
import type { Priority, Task, TaskSort } from '../schemas/tasks.js'
import {
  claimIdempotencyKey, type IdempotencyClaim, type StoredResponse, storedResponseFor, storeIdempotentResponse,
} from './idempotency-keys.js'

/** A task as the API shows it, plus the version its ETag is made of. */
export type TaskRecord = Task & { version: number }

/** All writable fields, as create and replace set them. */
export interface TaskValues {
  title: string
  description: string | null
  priority: Priority
  due_at: string | null
  tags: string[]
  completed: boolean
}

export interface TaskFilters {
  completed?: boolean | undefined
  priority?: Priority | undefined
  /** A task must carry every one of them. */
  tags?: string[] | undefined
  dueBefore?: string | undefined
  dueAfter?: string | undefined
  q?: string | undefined
}

/** Where a page ends: the sort key of its last task and that task's id. */
export type Position = [key: string | null, id: string]

export interface ListOptions {
  sort: TaskSort
  filters: TaskFilters
  limit: number
  after?: Position | undefined
}

const placeholder = (name: string) => sql.placeholder(name)

/**
 * The select list of a task, every entry named as the Task field it fills (rows of compiled
 * statements are keyed by those names); `taskOf` finishes the timestamps.
 */
const taskColumns = {
  id: tasks.id,
  title: tasks.title,
  description: tasks.description,
  completed: tasks.completed,
  completed_at: timestampText<string | null>(tasks.completedAt, 'completed_at'),
  priority: tasks.priority,
  due_at: timestampText<string | null>(tasks.dueAt, 'due_at'),
  tags: tasks.tags,
  created_at: timestampText<string>(tasks.createdAt, 'created_at'),
  updated_at: timestampText<string>(tasks.updatedAt, 'updated_at'),
  version: tasks.version,
}

/** A row of `taskColumns` as the API's Task, in place: its timestamps become RFC 3339. */
function taskOf (row: TaskRecord): TaskRecord {
  row.created_at = rfc3339FromPostgres(row.created_at)
  row.updated_at = rfc3339FromPostgres(row.updated_at)
  if (row.completed_at !== null) row.completed_at = rfc3339FromPostgres(row.completed_at)
  if (row.due_at !== null) row.due_at = rfc3339FromPostgres(row.due_at)
  return row
}

/**
 * Per sort: the key expression, written exactly as in its index (so each page is one index range
 * scan), the cursor value cast to the key's type, the direction, and the Task field the key is read
 * from. Nulls sort last both ways because missing due dates are indexed as +infinity ascending and
 * -infinity descending.
 */
interface SortSpec { key: SQL, after: SQL, descending: boolean, field: 'created_at' | 'due_at' | 'priority' | 'title' }
const afterKey = placeholder('afterKey')
const sortSpecs: Record<TaskSort, SortSpec> = (() => {
  const createdAt = { key: sql`${tasks.createdAt}`, after: sql`${afterKey}::timestamptz`, field: 'created_at' } as const
  const dueAsc = { key: sql`coalesce(${tasks.dueAt}, 'infinity'::timestamptz)`, after: sql`coalesce(${afterKey}::timestamptz, 'infinity'::timestamptz)`, field: 'due_at' } as const
  const dueDesc = { key: sql`coalesce(${tasks.dueAt}, '-infinity'::timestamptz)`, after: sql`coalesce(${afterKey}::timestamptz, '-infinity'::timestamptz)`, field: 'due_at' } as const
  const priority = { key: sql`${tasks.priority}`, after: sql`${afterKey}::task_priority`, field: 'priority' } as const
  const title = { key: sql`(${tasks.title} collate "C")`, after: sql`(${afterKey}::text collate "C")`, field: 'title' } as const
  return {
    created_at: { ...createdAt, descending: false },
    '-created_at': { ...createdAt, descending: true },
    due_at: { ...dueAsc, descending: false },
    '-due_at': { ...dueDesc, descending: true },
    priority: { ...priority, descending: false },
    '-priority': { ...priority, descending: true },
    title: { ...title, descending: false },
    '-title': { ...title, descending: true },
  }
})()

/** Values for the list statement's placeholders; only those its shape uses are read. */
export function listParameters (ownerId: string, options: ListOptions): Record<string, unknown> {
  const { filters, after } = options
  return {
    owner: ownerId,
    limit: options.limit + 1,
    completed: filters.completed,
    priority: filters.priority,
    tags: filters.tags,
    dueBefore: filters.dueBefore,
    dueAfter: filters.dueAfter,
    q: filters.q,
    afterKey: after?.[0],
    afterId: after?.[1],
  }
}

/** The conditions of a list statement; which ones appear is its shape. */
function listConditions (options: ListOptions): SQL[] {
  const { filters } = options
  const conditions = [sql`${tasks.ownerId} = ${placeholder('owner')}`]
  if (filters.completed !== undefined) conditions.push(sql`${tasks.completed} = ${placeholder('completed')}`)
  if (filters.priority !== undefined) conditions.push(sql`${tasks.priority} = ${placeholder('priority')}::task_priority`)
  if (filters.tags !== undefined && filters.tags.length > 0) conditions.push(sql`${tasks.tags} @> ${placeholder('tags')}::text[]`)
  if (filters.dueBefore !== undefined) conditions.push(sql`${tasks.dueAt} < ${placeholder('dueBefore')}::timestamptz`)
  if (filters.dueAfter !== undefined) conditions.push(sql`${tasks.dueAt} > ${placeholder('dueAfter')}::timestamptz`)
  if (filters.q !== undefined) conditions.push(sql`${searchDocument(tasks.title, tasks.description)} @@ websearch_to_tsquery('english', ${placeholder('q')})`)
  if (options.after !== undefined) {
    const { key, after, descending } = sortSpecs[options.sort]
    // A row comparison over the index's columns: PostgreSQL turns it into the scan's start point.
    conditions.push(descending
      ? sql`(${key}, ${tasks.id}) < (${after}, ${placeholder('afterId')}::uuid)`
      : sql`(${key}, ${tasks.id}) > (${after}, ${placeholder('afterId')}::uuid)`)
  }
  return conditions
}

function shapeOf (options: ListOptions): string {
  const { filters } = options
  return [
    options.sort, options.after !== undefined, filters.completed !== undefined, filters.priority !== undefined,
    filters.tags !== undefined && filters.tags.length > 0, filters.dueBefore !== undefined, filters.dueAfter !== undefined, filters.q !== undefined,
  ].join()
}

/** Fields a merge patch may set, in a fixed order so each combination is one statement. */
const patchable = ['title', 'description', 'priority', 'due_at', 'tags', 'completed'] as const
type Patchable = typeof patchable[number]

/** The SET clause of an update writing `fields`; every write bumps the version and updated_at. */
function setClause (fields: readonly Patchable[]) {
  const set: Record<string, SQL> = {
    version: sql`${tasks.version} + 1`,
    // Strictly later than before even when the clock is not, so updated_at orders writes.
    updatedAt: sql`greatest(now(), ${tasks.updatedAt} + interval '1 microsecond')`,
  }
  for (const field of fields) {
    switch (field) {
      case 'title': set.title = sql`${placeholder('title')}`; break
      case 'description': set.description = sql`${placeholder('description')}`; break
      case 'priority': set.priority = sql`${placeholder('priority')}::task_priority`; break
      case 'due_at': set.dueAt = sql`${placeholder('due_at')}::timestamptz`; break
      case 'tags': set.tags = sql`${placeholder('tags')}::text[]`; break
      case 'completed':
        set.completed = sql`${placeholder('completed')}`
        // Completing a completed task keeps its stamp; reopening clears it.
        set.completedAt = sql`case when ${placeholder('completed')}::boolean then coalesce(${tasks.completedAt}, now()) end`
        break
    }
  }
  return set
}

/**
 * A write's statement parameters: the owner, the writable fields under their own names (those a
 * patch leaves out are undefined; a statement reads only its own placeholders) and, for an update,
 * the row and the versions If-Match allows. Spelled out because an object spread of the fields
 * took V8's slow path: 8–10 µs of a create's CPU and 16–20 µs of an update's in `--cpu-prof`.
 */
function writeParameters (ownerId: string, values: Partial<TaskValues>, target?: { id: string, versions: number[] | null }): Record<string, unknown> {
  const { title, description, priority, due_at: dueAt, tags, completed } = values
  return { owner: ownerId, id: target?.id, versions: target?.versions, title, description, priority, due_at: dueAt, tags, completed }
}

/**
 * The list statement for a shape of options, with placeholders for every value: one page plus one
 * row, which tells whether another page follows.
 */
export function listQuery (db: Database, options: ListOptions) {
  const { key, descending } = sortSpecs[options.sort]
  return db.select(taskColumns).from(tasks)
    .where(and(...listConditions(options)))
    .orderBy(...(descending ? [sql`${key} desc`, desc(tasks.id)] : [sql`${key} asc`, asc(tasks.id)]))
    .limit(placeholder('limit'))
}

export function createTasksRepository ({ db, compile }: DatabaseHandle) {
  const insertStatement = (executor: Database) => executor.insert(tasks).values({
    ownerId: sql`${placeholder('owner')}`,
    title: sql`${placeholder('title')}`,
    description: sql`${placeholder('description')}`,
    priority: sql`${placeholder('priority')}::task_priority`,
    dueAt: sql`${placeholder('due_at')}::timestamptz`,
    tags: sql`${placeholder('tags')}::text[]`,
    completed: sql`${placeholder('completed')}`,
    completedAt: sql`case when ${placeholder('completed')}::boolean then now() end`,
  }).returning(taskColumns)

  // Statements are built once (per shape) and prepared: a request only binds its values.
  const getStatement = compile<TaskRecord>(db.select(taskColumns).from(tasks)
    .where(and(eq(tasks.id, placeholder('id')), eq(tasks.ownerId, placeholder('owner')))))
  const versionStatement = compile<{ version: number }>(db.select({ version: tasks.version }).from(tasks)
    .where(and(eq(tasks.id, placeholder('id')), eq(tasks.ownerId, placeholder('owner')))))
  const createStatement = compile<TaskRecord>(insertStatement(db))
  // If-Match lists the versions the write may apply to; null (no If-Match, or `*`) means any.
  const matches = and(
    eq(tasks.id, placeholder('id')),
    eq(tasks.ownerId, placeholder('owner')),
    sql`(${placeholder('versions')}::int[] is null or ${tasks.version} = any(${placeholder('versions')}::int[]))`,
  )
  const deleteStatement = compile<{ id: string }>(db.delete(tasks).where(matches).returning({ id: tasks.id }))

  const listStatements = new Map<string, Statement<TaskRecord>>()
  const updateStatements = new Map<string, Statement<TaskRecord>>()

  /** Why a conditional write matched no row: the task is not the caller's, or If-Match failed. */
  async function explainNoMatch (ownerId: string, id: string): Promise<never> {
    const [row] = await versionStatement({ id, owner: ownerId })
    if (row === undefined) throw problem('TASK_NOT_FOUND', `No task ${id}.`)
    throw problem('PRECONDITION_FAILED', 'The task has changed since you read it (If-Match does not match its ETag); read it again and retry.')
  }

  return {
    /** One page in the requested order, and where the next one starts (null on the last page). */
    async list (ownerId: string, options: ListOptions): Promise<{ items: TaskRecord[], next: Position | null }> {
      const shape = shapeOf(options)
      let statement = listStatements.get(shape)
      if (statement === undefined) {
        statement = compile<TaskRecord>(listQuery(db, options))
        listStatements.set(shape, statement)
      }
      const items = await statement(listParameters(ownerId, options))
      const more = items.length > options.limit
      if (more) items.length = options.limit
      for (const item of items) taskOf(item)
      if (!more) return { items, next: null }
      const last = items[options.limit - 1]!
      return { items, next: [last[sortSpecs[options.sort].field], last.id] }
    },

    /** The caller's task, or undefined for a missing task and for someone else's alike. */
    async get (ownerId: string, id: string): Promise<TaskRecord | undefined> {
      const [row] = await getStatement({ id, owner: ownerId })
      return row === undefined ? undefined : taskOf(row)
    },

    /**
     * Creates a task. With an idempotency claim, the key and the task are written in one
     * transaction, and a key already claimed answers its stored response instead.
     */
    async create (
      ownerId: string,
      values: TaskValues,
      idempotency?: IdempotencyClaim & { respond: (task: TaskRecord) => StoredResponse },
    ): Promise<{ created: TaskRecord } | { replay: StoredResponse }> {
      const parameters = writeParameters(ownerId, values)
      if (idempotency === undefined) {
        const [created] = await createStatement(parameters)
        return { created: taskOf(created!) }
      }
      return await db.transaction(async (tx) => {
        if (!await claimIdempotencyKey(tx, idempotency)) return { replay: await storedResponseFor(tx, idempotency) }
        const [row] = await insertStatement(tx).execute(parameters)
        const created = taskOf(row!)
        await storeIdempotentResponse(tx, idempotency, idempotency.respond(created))
        return { created }
      })
    },

    /**
     * Sets the given fields in one statement, when the task is the caller's and (with `versions`)
     * its version is one of them; otherwise 404 or 412. Concurrent writes with the same If-Match
     * cannot both succeed: the row lock makes the second one see the first one's version.
     */
    async update (ownerId: string, id: string, patch: Partial<TaskValues>, versions: number[] | null): Promise<TaskRecord> {
      const fields = patchable.filter((field) => patch[field] !== undefined)
      const shape = fields.join()
      let statement = updateStatements.get(shape)
      if (statement === undefined) {
        statement = compile<TaskRecord>(db.update(tasks).set(setClause(fields)).where(matches).returning(taskColumns))
        updateStatements.set(shape, statement)
      }
      const [row] = await statement(writeParameters(ownerId, patch, { id, versions }))
      return row === undefined ? await explainNoMatch(ownerId, id) : taskOf(row)
    },

    /** Deletes the caller's task under the same conditions as `update`. */
    async delete (ownerId: string, id: string, versions: number[] | null): Promise<void> {
      const [row] = await deleteStatement({ id, owner: ownerId, versions })
      if (row === undefined) await explainNoMatch(ownerId, id)
    },
  }
}

export type TasksRepository = ReturnType<typeof createTasksRepository>
