import { and, eq, type SQL, sql } from 'drizzle-orm'
import type { Database, DatabaseHandle, Statement } from '../db/client.js'
import { tasks } from '../db/schema.js'
import { problem } from '../errors.js'
import type { Position } from '../lib/paging.js'
import type { Priority } from '../schemas/tasks.js'
import { listParameters, listQuery, positionOf, shapeOf, taskColumns, taskOf, type TaskListRequest, type TaskRecord } from './task-query.js'

export type { TaskRecord } from './task-query.js'

/** All writable fields, as create and replace set them. */
export interface TaskValues {
  title: string
  description: string | null
  priority: Priority
  due_at: string | null
  tags: string[]
  completed: boolean
}

const placeholder = (name: string) => sql.placeholder(name)

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
 * takes V8's slow path (docs/decisions/0006-write-parameters-field-by-field.md).
 */
function writeParameters (ownerId: string, values: Partial<TaskValues>, target?: { id: string, versions: number[] | null }): Record<string, unknown> {
  const { title, description, priority, due_at: dueAt, tags, completed } = values
  return { owner: ownerId, id: target?.id, versions: target?.versions, title, description, priority, due_at: dueAt, tags, completed }
}

export function createTasksRepository ({ compile }: DatabaseHandle) {
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
  const getStatement = compile<TaskRecord>((executor) => executor.select(taskColumns).from(tasks)
    .where(and(eq(tasks.id, placeholder('id')), eq(tasks.ownerId, placeholder('owner')))))
  const versionStatement = compile<{ version: number }>((executor) => executor.select({ version: tasks.version }).from(tasks)
    .where(and(eq(tasks.id, placeholder('id')), eq(tasks.ownerId, placeholder('owner')))))
  const createStatement = compile<TaskRecord>(insertStatement)
  // If-Match lists the versions the write may apply to; null (no If-Match, or `*`) means any.
  const matches = and(
    eq(tasks.id, placeholder('id')),
    eq(tasks.ownerId, placeholder('owner')),
    sql`(${placeholder('versions')}::int[] is null or ${tasks.version} = any(${placeholder('versions')}::int[]))`,
  )
  const deleteStatement = compile<{ id: string }>((executor) => executor.delete(tasks).where(matches).returning({ id: tasks.id }))

  const listStatements = new Map<string, Statement<TaskRecord>>()
  const updateStatements = new Map<string, Statement<TaskRecord>>()

  /** Why a conditional write matched no row: the task is not the caller's, or If-Match failed. */
  async function explainNoMatch (ownerId: string, id: string, tx: Database | undefined): Promise<never> {
    const [row] = await versionStatement({ id, owner: ownerId }, tx)
    if (row === undefined) throw problem('TASK_NOT_FOUND', `No task ${id}.`)
    throw problem('PRECONDITION_FAILED', 'The task has changed since you read it (If-Match does not match its ETag); read it again and retry.')
  }

  return {
    /**
     * One page in the requested order, and where the next one starts (null on the last page). The
     * statement is built once per shape (src/repositories/task-query.ts) and prepared.
     */
    async list (ownerId: string, request: TaskListRequest): Promise<{ items: TaskRecord[], next: Position | null }> {
      const shape = shapeOf(request)
      let statement = listStatements.get(shape.key)
      if (statement === undefined) {
        statement = compile<TaskRecord>((executor) => listQuery(executor, shape))
        listStatements.set(shape.key, statement)
      }
      const items = await statement(listParameters(ownerId, request))
      const more = items.length > request.limit
      if (more) items.length = request.limit
      for (const item of items) taskOf(item)
      if (!more) return { items, next: null }
      return { items, next: positionOf(request.sort, items[request.limit - 1]!) }
    },

    /**
     * The caller's task, or undefined for a missing task and for someone else's alike. Every method
     * runs inside `tx` when one is given, as part of a larger unit of work.
     */
    async get (ownerId: string, id: string, tx?: Database): Promise<TaskRecord | undefined> {
      const [row] = await getStatement({ id, owner: ownerId }, tx)
      return row === undefined ? undefined : taskOf(row)
    },

    /** Creates a task owned by `ownerId`. */
    async create (ownerId: string, values: TaskValues, tx?: Database): Promise<TaskRecord> {
      const [row] = await createStatement(writeParameters(ownerId, values), tx)
      return taskOf(row!)
    },

    /**
     * Sets the given fields in one statement, when the task is the caller's and (with `versions`)
     * its version is one of them; otherwise 404 or 412. Concurrent writes with the same If-Match
     * cannot both succeed: the row lock makes the second one see the first one's version.
     */
    async update (ownerId: string, id: string, patch: Partial<TaskValues>, versions: number[] | null, tx?: Database): Promise<TaskRecord> {
      const fields = patchable.filter((field) => patch[field] !== undefined)
      const shape = fields.join()
      let statement = updateStatements.get(shape)
      if (statement === undefined) {
        const set = setClause(fields)
        statement = compile<TaskRecord>((executor) => executor.update(tasks).set(set).where(matches).returning(taskColumns))
        updateStatements.set(shape, statement)
      }
      const [row] = await statement(writeParameters(ownerId, patch, { id, versions }), tx)
      return row === undefined ? await explainNoMatch(ownerId, id, tx) : taskOf(row)
    },

    /** Deletes the caller's task under the same conditions as `update`. */
    async delete (ownerId: string, id: string, versions: number[] | null, tx?: Database): Promise<void> {
      const [row] = await deleteStatement({ id, owner: ownerId, versions }, tx)
      if (row === undefined) await explainNoMatch(ownerId, id, tx)
    },
  }
}

export type TasksRepository = ReturnType<typeof createTasksRepository>
