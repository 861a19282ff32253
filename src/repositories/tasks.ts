import { randomUUID } from 'node:crypto'
import { and, eq, is, SQL, sql } from 'drizzle-orm'
import { type Database, type DatabaseHandle, retriedOnConflict, type Statement, sqlStatement } from '../db/client.js'
import { isDatabaseUnavailable } from '../db/errors.js'
import { tasks } from '../db/schema.js'
import { problem } from '../errors.js'
import type { Position } from '../lib/paging.js'
import { batchQueue, type Queued } from '../lib/batch-queue.js'
import { activeTraceparent } from '../lib/tracing.js'
import type { Priority } from '../schemas/tasks.js'
import { listParameters, listQuery, positionOf, shapeOf, taskColumns, taskOf, type TaskListRequest, type TaskRecord } from './task-query.js'
import { canWrite, isLockedMember, isMember, roleOf } from './membership.js'
import { taskEventInsert } from './events.js'

export type { TaskRecord } from './task-query.js'

/**
 * All writable fields, as create and replace set them. `project_id` null on create is the caller's
 * Inbox; on replace, undefined keeps the task where it is, and undefined `assignee_id` keeps it too.
 */
export interface TaskValues {
  project_id: string | null | undefined
  assignee_id: string | null | undefined
  title: string
  description: string | null
  priority: Priority
  due_at: string | null
  tags: string[]
  completed: boolean
}

const placeholder = (name: string) => sql.placeholder(name)

/** Where a statement's value goes: a placeholder when it is rendered once, the value itself inside a transaction (see sqlStatement). */
type Value = (name: string) => unknown

/** Fields a merge patch may set, in a fixed order so each combination is one statement. */
const patchable = ['project_id', 'assignee_id', 'title', 'description', 'priority', 'due_at', 'tags', 'completed'] as const
type Patchable = typeof patchable[number]

/** The project a write leaves the task in: the one it moves to, or its own. */
const targetProject = (fields: readonly Patchable[], value: Value) => fields.includes('project_id') ? sql`${value('project_id')}::uuid` : sql`${tasks.projectId}`

/** The SET clause of an update writing `fields`; every write bumps the version and updated_at. */
function setClause (fields: readonly Patchable[], value: Value) {
  const set: Record<string, SQL> = {
    version: sql`${tasks.version} + 1`,
    // Strictly later than before even when the clock is not, so updated_at orders writes.
    updatedAt: sql`greatest(now(), ${tasks.updatedAt} + interval '1 microsecond')`,
  }
  for (const field of fields) {
    switch (field) {
      case 'project_id':
        set.projectId = sql`${value('project_id')}::uuid`
        // A move keeps the assignee only when they are a member of the new project too.
        if (!fields.includes('assignee_id')) {
          set.assigneeId = sql`case when ${isLockedMember(sql`${value('project_id')}::uuid`, sql`${tasks.assigneeId}`)} then ${tasks.assigneeId} end`
        }
        break
      case 'assignee_id': set.assigneeId = sql`${value('assignee_id')}::uuid`; break
      case 'title': set.title = sql`${value('title')}`; break
      case 'description': set.description = sql`${value('description')}`; break
      case 'priority': set.priority = sql`${value('priority')}::task_priority`; break
      case 'due_at': set.dueAt = sql`${value('due_at')}::timestamptz`; break
      case 'tags': set.tags = sql`${value('tags')}::text[]`; break
      case 'completed':
        set.completed = sql`${value('completed')}`
        // Completing a completed task keeps its stamp; reopening clears it.
        set.completedAt = sql`case when ${value('completed')}::boolean then coalesce(${tasks.completedAt}, now()) end`
        break
    }
  }
  return set
}

/**
 * The conditions of an update writing `fields` (or of a delete, with none): the caller may write in
 * the task's project, and in the one it moves to; a new assignee is a member there; and the version
 * is one If-Match allows. The membership rows are locked (FOR SHARE) until the write commits, so a
 * member's removal waits for their writes in flight, and no write of theirs lands after it.
 *
 * A delete or a move also holds the task's project FOR KEY SHARE before the task's row, as its
 * task_visibility trigger will (drizzle/0013_task_visibility.sql): taken after the row, that lock
 * would wait on a member's removal that holds the project and waits on the row to clear the task's
 * assignee, a deadlock.
 */
function writeConditions (fields: readonly Patchable[], value: Value, deleting = false): SQL {
  const user = sql`${value('user')}::uuid`
  const conditions = [
    sql`${tasks.id} = ${value('id')}`,
    canWrite(sql`${tasks.projectId}`, user),
    // If-Match lists the versions the write may apply to; null (no If-Match, or `*`) means any.
    sql`(${value('versions')}::int[] is null or ${tasks.version} = any(${value('versions')}::int[]))`,
  ]
  if (deleting || fields.includes('project_id')) conditions.push(sql`exists (select 1 from projects p where p.id = ${tasks.projectId} for key share)`)
  if (fields.includes('project_id')) conditions.push(canWrite(sql`${value('project_id')}::uuid`, user))
  if (fields.includes('assignee_id')) {
    conditions.push(sql`(${value('assignee_id')}::uuid is null or ${isLockedMember(targetProject(fields, value), sql`${value('assignee_id')}::uuid`)})`)
  }
  return and(...conditions)!
}

/**
 * For a move: the members of the project the task leaves who are not members of the one it joins,
 * so that the event (in the new project) still tells them it has gone. The task's row as this
 * statement found it still names the old project.
 */
const leftBehind = (value: Value) => sql`(select array_agg(m.user_id) from project_members m
  where m.project_id = (select t.project_id from tasks t where t.id = ${value('id')}::uuid)
    and not exists (select 1 from project_members n where n.project_id = "updated".project_id and n.user_id = m.user_id))`

/**
 * A write's statement parameters: the caller, the writable fields under their own names (those a
 * patch leaves out are undefined; a statement reads only its own placeholders) and, for an update,
 * the row and the versions If-Match allows, and the trace context its event carries. Spelled out because an object spread of the fields
 * takes V8's slow path (docs/decisions/0006-write-parameters-field-by-field.md).
 */
function writeParameters (userId: string, values: Partial<TaskValues>, target?: { id: string, versions: number[] | null }): Record<string, unknown> {
  const { project_id: projectId, assignee_id: assigneeId, title, description, priority, due_at: dueAt, tags, completed } = values
  return { user: userId, id: target?.id, versions: target?.versions, project_id: projectId, assignee_id: assigneeId, title, description, priority, due_at: dueAt, tags, completed, traceparent: activeTraceparent() }
}

/** What a write that matched no row ran into, read back in one statement. */
interface WriteState {
  /** The task's version; null when there is no such task (updates) or project (creates, which read 0). */
  version: number | null
  role: string | null
  target_role: string | null
  assignee_member: boolean
}

/** Code-unit order, which for lowercase uuids is PostgreSQL's order of the uuid values. */
const compareText = (a: string, b: string) => a < b ? -1 : a > b ? 1 : 0

/** The most creates one statement writes; more wait for the next (docs/decisions/0035-creates-batched.md). */
const CREATE_BATCH_MAX = 64

/** One create waiting for a batch: the caller, the values and the statement parameters of the create alone. */
interface CreateCall {
  userId: string
  values: TaskValues
  parameters: Record<string, unknown>
}

export function createTasksRepository ({ compile, poolMax }: DatabaseHandle) {
  const user = sql`${placeholder('user')}::uuid`
  /** The project a create writes into: the one given, else the caller's Inbox. */
  const createProject = sql`coalesce(${placeholder('project_id')}::uuid, (select p.id from projects p where p.owner_id = ${user} and p.is_inbox))`
  // The select list of a task, spelled out for a statement written as SQL.
  const returning = sql.join(Object.entries(taskColumns).map(([name, column]) =>
    sql`${is(column, SQL.Aliased) ? column.sql : column} as ${sql.identifier(name)}`), sql`, `)

  // Statements are built once (per shape) and prepared: a request only binds its values.
  const getStatement = compile<TaskRecord>((executor) => executor.select(taskColumns).from(tasks)
    .where(and(eq(tasks.id, placeholder('id')), isMember(sql`${tasks.projectId}`, user))))
  // INSERT … SELECT from the caller's membership, so that a caller who may not write there inserts
  // nothing, and the membership stays locked until the task is committed; the event is written by
  // the same statement.
  const createStatement = compile<TaskRecord>((executor) => sqlStatement(executor, (value) => sql`
    with created as (
      insert into tasks (project_id, assignee_id, created_by, title, description, priority, due_at, tags, completed, completed_at)
      select caller.project_id, ${value('assignee_id')}::uuid, caller.user_id, ${value('title')}, ${value('description')},
        ${value('priority')}::task_priority, ${value('due_at')}::timestamptz, ${value('tags')}::text[], ${value('completed')}::boolean,
        case when ${value('completed')}::boolean then now() end
      from project_members caller
      where caller.project_id = coalesce(${value('project_id')}::uuid, (select p.id from projects p where p.owner_id = ${value('user')}::uuid and p.is_inbox))
        and caller.user_id = ${value('user')}::uuid and caller.role <> 'viewer'
        and (${value('assignee_id')}::uuid is null or ${isLockedMember(sql`caller.project_id`, sql`${value('assignee_id')}::uuid`)})
      for share of caller
      returning ${returning}
    ), event as (${taskEventInsert('task.created', sql`${value('user')}::uuid`, 'created', sql`${value('traceparent')}`)})
    select * from created`))
  // The same create for many calls at once, in one statement and transaction: each row carries its
  // caller, a task id chosen here to match rows to calls, and its trace context; a row whose caller
  // may not write there inserts nothing, as above. The membership is looked up per row, by its key
  // (LIMIT 1 keeps the lateral from being flattened into a join that hashes every membership).
  const createManyStatement = compile<TaskRecord>((executor) => sqlStatement(executor, (value) => sql`
    with input as (
      select * from jsonb_to_recordset(${value('rows')}::jsonb) as r(id uuid, "user" uuid, project_id uuid, assignee_id uuid, title text,
        description text, priority task_priority, due_at timestamptz, tags text[], completed boolean, traceparent text)
    ), created as (
      insert into tasks (id, project_id, assignee_id, created_by, title, description, priority, due_at, tags, completed, completed_at)
      select r.id, caller.project_id, r.assignee_id, caller.user_id, r.title, r.description, r.priority, r.due_at, r.tags, r.completed,
        case when r.completed then now() end
      from input r cross join lateral (
        select own.project_id, own.user_id from project_members own
        where own.project_id = coalesce(r.project_id, (select p.id from projects p where p.owner_id = r."user" and p.is_inbox))
          and own.user_id = r."user" and own.role <> 'viewer'
          and (r.assignee_id is null or ${isLockedMember(sql`own.project_id`, sql`r.assignee_id`)})
        limit 1 for share
      ) caller
      returning ${returning}
    ), event as (${taskEventInsert('task.created', sql`"created".created_by`, 'created', sql`(select r.traceparent from input r where r.id = "created".id)`)})
    select * from created`))
  const createStateStatement = compile<WriteState>((executor) => executor.select({
    version: sql<number | null>`case when ${createProject} is null then null else 0 end`.as('version'),
    role: sql<string | null>`${roleOf(createProject, user)}`.as('role'),
    target_role: sql<string | null>`null`.as('target_role'),
    assignee_member: sql<boolean>`(${placeholder('assignee_id')}::uuid is null or ${isMember(createProject, sql`${placeholder('assignee_id')}::uuid`)})`.as('assignee_member'),
  }).from(sql`(select 1) as one`))
  const updateStateStatement = compile<WriteState>((executor) => executor.select({
    version: tasks.version,
    role: sql<string | null>`${roleOf(sql`${tasks.projectId}`, user)}`.as('role'),
    target_role: sql<string | null>`${roleOf(sql`${placeholder('project_id')}::uuid`, user)}`.as('target_role'),
    assignee_member: sql<boolean>`(${placeholder('assignee_id')}::uuid is null or ${isMember(sql`coalesce(${placeholder('project_id')}::uuid, ${tasks.projectId})`, sql`${placeholder('assignee_id')}::uuid`)})`.as('assignee_member'),
  }).from(tasks).where(eq(tasks.id, placeholder('id'))))
  const deleteStatement = compile<{ id: string }>((executor) => sqlStatement(executor, (value) => sql`
    with deleted as (${executor.delete(tasks).where(writeConditions([], value, true)).returning({ id: tasks.id, project_id: tasks.projectId }).getSQL()}),
    event as (${taskEventInsert('task.deleted', sql`${value('user')}::uuid`, 'deleted', sql`${value('traceparent')}`)})
    select id from deleted`))

  /** Why a create that inserted nothing did not: the problem to answer. */
  async function createProblem (userId: string, values: TaskValues, tx: Database | undefined): Promise<never> {
    const [state] = await createStateStatement({ user: userId, project_id: values.project_id ?? null, assignee_id: values.assignee_id ?? null }, tx)
    return explain(state, undefined, values, null)
  }

  /**
   * Runs a write's statement. Alone (outside a transaction), a write that lost a deadlock (to a
   * project's deletion or handover, a change of membership, an account's deletion) runs again: it
   * rolled back, and it may still land, or find what it needs gone. Inside `tx` it runs once: the
   * unit of work is what rolled back.
   */
  async function written<R> (statement: Statement<R>, parameters: Record<string, unknown>, tx: Database | undefined): Promise<R[]> {
    return tx === undefined ? await retriedOnConflict(async () => await statement(parameters)) : await statement(parameters, tx)
  }

  /** One create. */
  async function createOne ({ userId, values, parameters }: CreateCall, tx?: Database): Promise<TaskRecord> {
    const [row] = await written(createStatement, parameters, tx)
    if (row !== undefined) return taskOf(row)
    return await createProblem(userId, values, tx)
  }

  /**
   * Creates a batch of calls: alone, as createOne; together, in one statement, and when the database
   * fails that statement, each alone again, so that one call's failure is not the others'. The
   * batch's transaction rolled back, so nothing is written twice. A database that cannot be reached
   * fails the whole batch at once (503).
   */
  async function createBatch (batch: Array<Queued<CreateCall, TaskRecord>>): Promise<void> {
    const settle = async (queued: Queued<CreateCall, TaskRecord>) => { await createOne(queued.item).then(queued.resolve, queued.reject) }
    if (batch.length === 1) return await settle(batch[0]!)
    // Rows, and so the memberships they lock, in (project, user) order: as a project's deletion and
    // handover lock them, so that neither can deadlock with a batch (the Inbox, null here, has one writer).
    batch.sort((a, b) => compareText((a.item.values.project_id ?? '').toLowerCase(), (b.item.values.project_id ?? '').toLowerCase()) ||
      compareText(a.item.userId, b.item.userId))
    const ids = batch.map(() => randomUUID())
    // Each create's own parameters with its id; the statement's record type picks the columns it reads.
    const rows = batch.map(({ item }, i) => ({ ...item.parameters, id: ids[i] }))
    let created: TaskRecord[]
    try {
      created = await createManyStatement({ rows: JSON.stringify(rows) })
    } catch (error) {
      // Unreachable, it would fail them alone as well, after another wait for a connection.
      if (isDatabaseUnavailable(error)) throw error
      await Promise.all(batch.map(settle))
      return
    }
    const byId = new Map(created.map((row) => [row.id, row]))
    await Promise.all(batch.map(async (queued, i) => {
      const row = byId.get(ids[i]!)
      if (row !== undefined) queued.resolve(taskOf(row))
      else await createProblem(queued.item.userId, queued.item.values, undefined).catch(queued.reject)
    }))
  }
  const createQueued = batchQueue(poolMax, CREATE_BATCH_MAX, createBatch)

  const listStatements = new Map<string, Statement<TaskRecord>>()
  const updateStatements = new Map<string, Statement<TaskRecord>>()

  /**
   * Why a write matched no row, in the order a caller fixes things: a task or project they may not
   * see (404), a role that may not write (403), a version If-Match does not allow (412), an
   * assignee who is not a member (422).
   */
  function explain (state: WriteState | undefined, id: string | undefined, values: Partial<TaskValues>, versions: number[] | null): never {
    if (state === undefined || state.version === null || state.role === null) {
      throw id === undefined ? problem('PROJECT_NOT_FOUND', `No project ${values.project_id ?? ''}.`) : problem('TASK_NOT_FOUND', `No task ${id}.`)
    }
    if (state.role === 'viewer') throw problem('ROLE_FORBIDDEN', 'You are a viewer of this project: only its owner and editors write in it.')
    if (id !== undefined && typeof values.project_id === 'string') {
      if (state.target_role === null) throw problem('PROJECT_NOT_FOUND', `No project ${values.project_id} to move the task to.`)
      if (state.target_role === 'viewer') throw problem('ROLE_FORBIDDEN', 'You are a viewer of the project you are moving the task to: only its owner and editors write in it.')
    }
    if (versions !== null && !versions.includes(state.version)) {
      throw problem('PRECONDITION_FAILED', 'The task has changed since you read it (If-Match does not match its ETag); read it again and retry.')
    }
    if (!state.assignee_member) throw problem('ASSIGNEE_NOT_MEMBER', `User ${values.assignee_id ?? ''} is not a member of the task's project.`)
    throw problem('WRITE_CONFLICT', 'The task, its project or its members changed while you wrote; retry.')
  }

  /** What an update of `id` by the caller with `patch` runs into. */
  async function updateState (userId: string, id: string, patch: Partial<TaskValues>, tx: Database | undefined): Promise<WriteState | undefined> {
    const [state] = await updateStateStatement({ id, user: userId, project_id: patch.project_id ?? null, assignee_id: patch.assignee_id ?? null }, tx)
    return state
  }

  return {
    /**
     * One page in the requested order across every project the caller is a member of, and where the
     * next one starts (null on the last page). The statement is built once per shape
     * (src/repositories/task-query.ts) and prepared.
     */
    async list (userId: string, request: TaskListRequest): Promise<{ items: TaskRecord[], next: Position | null }> {
      const shape = shapeOf(request)
      let statement = listStatements.get(shape.key)
      if (statement === undefined) {
        statement = compile<TaskRecord>((executor) => listQuery(executor, shape))
        listStatements.set(shape.key, statement)
      }
      const items = await statement(listParameters(userId, request))
      const more = items.length > request.limit
      if (more) items.length = request.limit
      for (const item of items) taskOf(item)
      if (!more) return { items, next: null }
      return { items, next: positionOf(request.sort, items[request.limit - 1]!) }
    },

    /**
     * The task, when the caller is a member of its project; undefined for a missing task and for one
     * they may not see alike. Every method runs inside `tx` when one is given, as part of a larger
     * unit of work.
     */
    async get (userId: string, id: string, tx?: Database): Promise<TaskRecord | undefined> {
      const [row] = await getStatement({ id, user: userId }, tx)
      return row === undefined ? undefined : taskOf(row)
    },

    /**
     * Creates a task in `values.project_id` (null: the caller's Inbox), made by the caller, who must
     * be its owner or an editor; else 404 or 403, and 422 for an assignee who is not a member.
     * Outside a transaction, creates made while every connection is busy are written together, in
     * one statement (createBatch): the same rows, events and answers, fewer round trips and commits.
     */
    async create (userId: string, values: TaskValues, tx?: Database): Promise<TaskRecord> {
      const parameters = writeParameters(userId, values)
      parameters.project_id ??= null
      parameters.assignee_id ??= null
      const call = { userId, values, parameters }
      return tx === undefined ? await createQueued(call) : await createOne(call, tx)
    },

    /**
     * Sets the given fields in one statement, when the caller may write the task (and, moving it,
     * in the project it moves to) and (with `versions`) its version is one of them; otherwise 404,
     * 403, 412 or 422. Concurrent writes with the same If-Match cannot both succeed: the row lock
     * makes the second one see the first one's version. Alone, it runs again if it loses a deadlock.
     */
    async update (userId: string, id: string, patch: Partial<TaskValues>, versions: number[] | null, tx?: Database): Promise<TaskRecord> {
      const fields = patchable.filter((field) => patch[field] !== undefined)
      const shape = fields.join()
      let statement = updateStatements.get(shape)
      if (statement === undefined) {
        statement = compile<TaskRecord>((executor) => sqlStatement(executor, (value) => sql`
          with updated as (${executor.update(tasks).set(setClause(fields, value)).where(writeConditions(fields, value)).returning(taskColumns).getSQL()}),
          event as (${taskEventInsert('task.updated', sql`${value('user')}::uuid`, 'updated', sql`${value('traceparent')}`, fields.includes('project_id') ? leftBehind(value) : undefined)})
          select * from updated`))
        updateStatements.set(shape, statement)
      }
      const [row] = await written(statement, writeParameters(userId, patch, { id, versions }), tx)
      if (row !== undefined) return taskOf(row)
      return explain(await updateState(userId, id, patch, tx), id, patch, versions)
    },

    /** Deletes the task under the same conditions as `update`, and runs again as it does. */
    async delete (userId: string, id: string, versions: number[] | null, tx?: Database): Promise<void> {
      const [row] = await written(deleteStatement, { id, user: userId, versions, traceparent: activeTraceparent() }, tx)
      if (row === undefined) explain(await updateState(userId, id, {}, tx), id, {}, versions)
    },

  }
}

export type TasksRepository = ReturnType<typeof createTasksRepository>
