import { type Static, type TOptional, type TSchema, Type } from '@sinclair/typebox'
import { and, eq, type Placeholder, type SQL, sql } from 'drizzle-orm'
import type { PgColumn } from 'drizzle-orm/pg-core'
import type { Database } from '../db/client.js'
import { projectMembers, searchDocument, taskVisibility, tasks } from '../db/schema.js'
import { rfc3339FromPostgres, timestampText } from '../db/timestamps.js'
import type { ListRequest, PagedList, Position } from '../lib/paging.js'
import { InstantInput, Priority, StringEnum, Tag, type Task } from '../schemas/tasks.js'

/**
 * The task list, declared once: the columns a task is read from, the filters and the sort orders.
 * Everything else is derived from this declaration — the select list and the shaping of rows, the
 * WHERE conditions, the statement parameters, the key of the prepared-statement cache, the cursor
 * context (src/lib/paging.ts) and the query parameters as the API documents them (TaskListQuery).
 * Adding a column or a filter touches the declaration and the migration (and, for a column, the
 * Task schema the API documents; the type checker names what is missing).
 */

/** A task as the API shows it, plus the version its ETag is made of. */
export type TaskRecord = Task & { version: number }

/** A column of the representation, selected under its API name. */
interface Column {
  readonly column: PgColumn
  /** A timestamptz: selected as PostgreSQL's text, finished as RFC 3339 (see timestampText). */
  readonly timestamp: boolean
}
const plain = (column: PgColumn): Column => ({ column, timestamp: false })
const instant = (column: PgColumn): Column => ({ column, timestamp: true })

/** A filter, named as its query parameter. */
interface Filter<S extends TSchema> {
  /** The query parameter, as the API documents and validates it. */
  readonly schema: S
  /** The condition, given the placeholder the filter's value is bound to. */
  readonly where: (value: Placeholder) => SQL
  /** Makes equivalent values one (one cursor context, one parameter), and a value that filters nothing undefined. */
  normalise? (value: Static<S>): Static<S> | undefined
}
const filter = <S extends TSchema>(declaration: Filter<S>): Filter<S> => declaration

/** Fields a sort key can be read from: the cursor carries the last task's value of it. */
type KeyField = { [K in keyof TaskRecord]-?: TaskRecord[K] extends string | null ? K : never }[keyof TaskRecord]

/**
 * A sort order: the key expression, written exactly as in its index (so each page is one index
 * range scan), the cursor value cast to the key's type, the direction, and the field the key is
 * read from.
 */
interface Sort {
  readonly key: SQL
  readonly cast: (value: Placeholder) => SQL
  readonly field: KeyField
  readonly descending: boolean
}
const both = (key: Omit<Sort, 'descending'>) => [{ ...key, descending: false }, { ...key, descending: true }] as const

/** Placeholders every list statement may use besides the filters'; no filter may take these names. */
const reserved = ['user', 'limit', 'afterKey', 'afterId'] as const

function declareTaskList<F extends Record<string, Filter<TSchema>>, S extends string> (declaration: {
  columns: { readonly [K in keyof TaskRecord]-?: Column }
  filters: F
  sorts: Record<S, Sort>
  defaultSort: NoInfer<S>
  defaultLimit: number
}): typeof declaration & PagedList<{ [K in keyof F]: Static<F[K]['schema']> | undefined }, S> {
  for (const name of Object.keys(declaration.filters)) {
    if ((reserved as readonly string[]).includes(name) || !/^[a-z][a-z0-9_]*$/.test(name)) throw new Error(`The task filter name "${name}" is reserved or not a lower-case identifier`)
  }
  return declaration as never
}

const [createdAtAsc, createdAtDesc] = both({ key: sql`${tasks.createdAt}`, cast: (v) => sql`${v}::timestamptz`, field: 'created_at' })
const [priorityAsc, priorityDesc] = both({ key: sql`${tasks.priority}`, cast: (v) => sql`${v}::task_priority`, field: 'priority' })
const [titleAsc, titleDesc] = both({ key: sql`(${tasks.title} collate "C")`, cast: (v) => sql`(${v}::text collate "C")`, field: 'title' })

export const taskList = declareTaskList({
  columns: {
    id: plain(tasks.id),
    project_id: plain(tasks.projectId),
    title: plain(tasks.title),
    description: plain(tasks.description),
    completed: plain(tasks.completed),
    completed_at: instant(tasks.completedAt),
    priority: plain(tasks.priority),
    due_at: instant(tasks.dueAt),
    tags: plain(tasks.tags),
    assignee_id: plain(tasks.assigneeId),
    created_by: plain(tasks.createdBy),
    created_at: instant(tasks.createdAt),
    updated_at: instant(tasks.updatedAt),
    version: plain(tasks.version),
  },

  // Filters carry no `example`: Swagger UI pre-fills parameters with it, and "Try it out" would then
  // filter everything away. Their descriptions show a value instead.
  filters: {
    project_id: filter({
      schema: Type.String({ format: 'uuid', description: 'Only the tasks of this project, e.g. `0b6f2c1e-3d4a-4b5c-8d9e-1f2a3b4c5d6e`. A project you are not a member of (or none at all) lists nothing.' }),
      // On the membership the list starts from, so the other projects are not scanned at all.
      where: (value) => sql`${projectMembers.projectId} = ${value}::uuid`,
      normalise: (id) => id.toLowerCase(),
    }),
    assignee_id: filter({
      schema: Type.String({
        pattern: '^(me|none|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$',
        maxLength: 36,
        description: 'Only the tasks assigned to this user id, to you (`me`), or to nobody (`none`).',
      }),
      where: (value) => sql`coalesce(${tasks.assigneeId}::text, 'none') = (case when ${value} = 'me' then ${user}::text else ${value} end)`,
      normalise: (id) => id.toLowerCase(),
    }),
    completed: filter({
      schema: Type.Boolean({ description: 'Only completed (`true`) or only open (`false`) tasks.' }),
      where: (value) => sql`${tasks.completed} = ${value}`,
    }),
    priority: filter({
      schema: Type.Unsafe<Priority>({ ...Priority, description: 'Only tasks of this priority, e.g. `high`.' }),
      where: (value) => sql`${tasks.priority} = ${value}::task_priority`,
    }),
    tag: filter({
      schema: Type.Array(Tag, {
        maxItems: 20,
        description: 'Only tasks carrying this tag. Repeat the parameter for several tags: a task must carry all of them (`?tag=work&tag=urgent`).',
      }),
      where: (value) => sql`${tasks.tags} @> ${value}::text[]`,
      // The same tags in another order or repeated are the same filter.
      normalise: (tags) => tags.length === 0 ? undefined : [...new Set(tags)].sort(),
    }),
    due_before: filter({
      schema: Type.String({ ...InstantInput, description: 'Only tasks due strictly before this instant, e.g. `2026-12-31T23:59:59Z` (tasks without `due_at` never match).' }),
      where: (value) => sql`${tasks.dueAt} < ${value}::timestamptz`,
    }),
    due_after: filter({
      schema: Type.String({ ...InstantInput, description: 'Only tasks due strictly after this instant, e.g. `2026-12-01T00:00:00Z` (tasks without `due_at` never match).' }),
      where: (value) => sql`${tasks.dueAt} > ${value}::timestamptz`,
    }),
    q: filter({
      schema: Type.String({
        minLength: 1,
        maxLength: 200,
        description: 'Full-text search over title and description with PostgreSQL English text search (`run` finds "Running"). Web-search syntax: `"exact phrase"`, `or`, `-excluded`, e.g. `passport -visa`.',
      }),
      where: (value) => sql`${searchDocument(tasks.title, tasks.description)} @@ websearch_to_tsquery('english', ${value})`,
    }),
  },

  // In the order the API documents them.
  sorts: {
    created_at: createdAtAsc,
    '-created_at': createdAtDesc,
    // Nulls last both ways: missing due dates are indexed as +infinity ascending, -infinity descending.
    due_at: { key: sql`coalesce(${tasks.dueAt}, 'infinity'::timestamptz)`, cast: (v) => sql`coalesce(${v}::timestamptz, 'infinity'::timestamptz)`, field: 'due_at', descending: false },
    '-due_at': { key: sql`coalesce(${tasks.dueAt}, '-infinity'::timestamptz)`, cast: (v) => sql`coalesce(${v}::timestamptz, '-infinity'::timestamptz)`, field: 'due_at', descending: true },
    priority: priorityAsc,
    '-priority': priorityDesc,
    title: titleAsc,
    '-title': titleDesc,
  },
  defaultSort: '-created_at',
  defaultLimit: 20,
})

// ---------------------------------------------------------------------------------------------
// Everything below is derived from the declaration above.

type Filters = typeof taskList.filters
export type TaskFilterName = keyof Filters & string
/** The value of each filter; undefined when it is absent. */
export type TaskFilters = { [K in TaskFilterName]: Static<Filters[K]['schema']> | undefined }
export type TaskSort = keyof typeof taskList.sorts & string
export type TaskListRequest = ListRequest<TaskFilters, TaskSort>

export const taskFilterNames = Object.keys(taskList.filters) as TaskFilterName[]
export const sorts = Object.keys(taskList.sorts) as TaskSort[]

/**
 * The select list of a task, every entry named as the Task field it fills (rows of compiled
 * statements are keyed by those names, so a column named otherwise is aliased); `taskOf` finishes
 * the timestamps. Typed as the rows it selects.
 */
export const taskColumns = Object.fromEntries(Object.entries(taskList.columns).map(([name, { column, timestamp }]) =>
  [name, timestamp ? timestampText(column, name) : column.name === name ? column : sql`${column}`.as(name)])) as { [K in keyof TaskRecord]-?: SQL.Aliased<TaskRecord[K]> }

/**
 * A row of `taskColumns` as the API's Task, in place: its timestamps become RFC 3339. The one place
 * that names the timestamp columns again: stores to named properties keep list and get fast, where a
 * loop over the declared names was measurably slower (docs/performance.md, "Rows shaped in place").
 * test/tasks/query-declaration.test.ts checks that it finishes exactly the declared timestamps.
 */
export function taskOf (row: TaskRecord): TaskRecord {
  row.created_at = rfc3339FromPostgres(row.created_at)
  row.updated_at = rfc3339FromPostgres(row.updated_at)
  if (row.completed_at !== null) row.completed_at = rfc3339FromPostgres(row.completed_at)
  if (row.due_at !== null) row.due_at = rfc3339FromPostgres(row.due_at)
  return row
}

/** The query parameters of the list, as the API documents and validates them. */
export const TaskListQuery = Type.Object({
  ...Object.fromEntries(taskFilterNames.map((name) => [name, Type.Optional(taskList.filters[name].schema)])) as { [K in TaskFilterName]: TOptional<Filters[K]['schema']> },
  sort: Type.Optional(StringEnum(sorts, {
    default: taskList.defaultSort,
    description: 'Sort field; a leading `-` sorts descending. Ties are broken by `id` in the same direction. Tasks without `due_at` come last in both directions. `title` sorts by Unicode code point (case-sensitive, `Z` before `a`); `priority` as low < medium < high.',
  })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: taskList.defaultLimit, description: 'Page size, 1 to 100.', example: 20 })),
  cursor: Type.Optional(Type.String({
    minLength: 1,
    maxLength: 2048,
    pattern: '^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$',
    description: 'Opaque `next_cursor` of the previous page. It is tied to you and to this `sort` and these filters: sent with others, or altered, it is a 400 `INVALID_CURSOR`. Paging stays exact while tasks are added or removed meanwhile: each task still present is returned once.',
  })),
}, { additionalProperties: false })
export type TaskListQuery = Static<typeof TaskListQuery>

/**
 * What a list statement looks like: its sort, whether it starts after a cursor, and which filters
 * it applies. Statements are built from the shape alone, and cached under its key.
 */
export interface ListShape {
  readonly key: string
  readonly sort: TaskSort
  readonly after: boolean
  readonly filters: readonly TaskFilterName[]
}

/** The shape of a request's statement: a filter is applied when its value is not undefined. */
export function shapeOf (request: TaskListRequest): ListShape {
  const filters: TaskFilterName[] = []
  for (let i = 0; i < taskFilterNames.length; i++) {
    const name = taskFilterNames[i]!
    if (request.filters[name] !== undefined) filters.push(name)
  }
  const after = request.after !== undefined
  return { key: `${request.sort}|${after ? 'after' : ''}|${filters.join(',')}`, sort: request.sort, after, filters }
}

const placeholder = (name: string) => sql.placeholder(name)
const user = placeholder('user')
const afterKey = placeholder('afterKey')
const afterId = placeholder('afterId')
const limit = placeholder('limit')

/**
 * The list statement of a shape, with a placeholder for every value (each filter's is named as the
 * filter): one page plus one row, which tells whether another page follows. The caller's tasks are
 * those of every project they are a member of. Unfiltered and sorted by creation, the page is one
 * range of the caller's rows of task_visibility (docs/decisions/0036-task-visibility.md); otherwise
 * each project's own range scan of the sort's index gives at most a page (from the cursor on),
 * those are merged and cut to a page (docs/decisions/0026-one-list-across-projects.md). Either
 * way, only the page's rows are read in full.
 */
export function listQuery (db: Database, shape: ListShape) {
  const { key, cast, descending, field } = taskList.sorts[shape.sort]
  const order = (sortKey: unknown, id: unknown) => descending ? [sql`${sortKey} desc`, sql`${id} desc`] : [sql`${sortKey} asc`, sql`${id} asc`]
  // A row comparison over an index's columns: PostgreSQL turns it into the scan's start point.
  const after = (sortKey: unknown, id: unknown) => sql`(${sortKey}, ${id}) ${sql.raw(descending ? '<' : '>')} (${cast(afterKey)}, ${afterId}::uuid)`
  const page = shape.filters.length === 0 && field === 'created_at' ? visiblePage() : mergedPage()
  return db.select(taskColumns).from(page).innerJoin(tasks, eq(tasks.id, page.id))
    .orderBy(...order(page.sortKey, page.id))

  function visiblePage () {
    const { createdAt, taskId, userId } = taskVisibility
    return db.select({ id: taskId, sortKey: sql`${createdAt}`.as('sort_key') }).from(taskVisibility)
      .where(and(eq(userId, user), shape.after ? after(createdAt, taskId) : undefined)).orderBy(...order(createdAt, taskId)).limit(limit).as('page')
  }

  function mergedPage () {
    const conditions = [sql`${tasks.projectId} = ${projectMembers.projectId}`]
    for (const name of shape.filters) conditions.push(taskList.filters[name].where(placeholder(name)))
    if (shape.after) conditions.push(after(key, tasks.id))
    const perProject = db.select({ id: tasks.id, sortKey: sql`${key}`.as('sort_key') }).from(tasks)
      .where(and(...conditions)).orderBy(...order(key, tasks.id)).limit(limit).as('per_project')
    return db.select({ id: perProject.id, sortKey: perProject.sortKey }).from(projectMembers)
      .crossJoinLateral(perProject).where(eq(projectMembers.userId, user))
      .orderBy(...order(perProject.sortKey, perProject.id)).limit(limit).as('page')
  }
}

/**
 * Values for the list statement's placeholders, field by field (no spread: see writeParameters in
 * tasks.ts); a statement reads only those of its shape.
 */
export function listParameters (userId: string, request: TaskListRequest): Record<string, unknown> {
  const { after, filters } = request
  const values: Record<string, unknown> = { user: userId, limit: request.limit + 1, afterKey: after?.[0], afterId: after?.[1] }
  for (let i = 0; i < taskFilterNames.length; i++) {
    const name = taskFilterNames[i]!
    values[name] = filters[name]
  }
  return values
}

/** Where a page that ends with `last` ends, in the request's sort. */
export function positionOf (sort: TaskSort, last: TaskRecord): Position {
  return [last[taskList.sorts[sort].field], last.id]
}
