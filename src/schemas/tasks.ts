import { type Static, Type } from '@sinclair/typebox'
import { Nullable, Page, Uuid } from './common.js'

/** A string enum as a JSON Schema `enum`: one keyword for validators and a named enum for SDKs. */
export function StringEnum<const V extends readonly string[]> (values: V, options: { title?: string, description?: string, example?: V[number], default?: V[number] } = {}) {
  return Type.Unsafe<V[number]>({ type: 'string', enum: values, ...options })
}

export const priorities = ['low', 'medium', 'high'] as const
// No `example`: the list filter refers to it too, and Swagger UI would pre-fill the filter with it.
export const Priority = StringEnum(priorities, {
  title: 'Priority',
  description: '`low` < `medium` < `high`: sorting by priority follows this order, not the alphabet.',
})
export type Priority = Static<typeof Priority>

/**
 * Timestamps the API renders exactly as stored (microseconds, UTC), so a value read from a task can
 * be sent back (as a filter, or inside a cursor) without losing precision.
 */
const TaskTimestamp = Type.String({ format: 'date-time', description: 'RFC 3339 timestamp in UTC, with microseconds.', example: '2026-11-23T09:30:00.123456Z' })

/**
 * Client-supplied instants: RFC 3339 with a time zone, at most microsecond precision, years 1000 to
 * 9998 and offsets within ±15:59 — the range PostgreSQL stores and renders back as RFC 3339.
 */
export const InstantInput = Type.String({
  format: 'date-time',
  pattern: '^(?!9999)[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,6})?([Zz]|[+-](0[0-9]|1[0-5]):[0-5][0-9])$',
  maxLength: 32,
  description: 'RFC 3339 date-time with a time zone (`Z` or `±hh:mm`), years 1000 to 9998, up to microseconds.',
  example: '2026-12-01T17:00:00Z',
})

export const TaskTitle = Type.String({
  minLength: 1,
  maxLength: 200,
  pattern: '\\S',
  description: '1 to 200 characters, not only white space.',
  example: 'Renew passport',
})
export const TaskDescription = Nullable(Type.String({ maxLength: 10_000 }), {
  description: 'Free text, at most 10 000 characters, or null.',
  example: 'Book an appointment at the town hall; bring two photos.',
})
export const Tag = Type.String({ minLength: 1, maxLength: 50, description: '1 to 50 characters.', example: 'errands' })
export const Tags = Type.Array(Tag, {
  maxItems: 20,
  uniqueItems: true,
  description: 'At most 20 distinct tags, kept in the order given.',
  example: ['errands', 'paperwork'],
})
const Completed = Type.Boolean({
  description: 'Setting it to true stamps `completed_at` (an already completed task keeps its stamp); false clears `completed_at`.',
  example: false,
})
const DueAt = Nullable(InstantInput, { description: 'When the task is due, or null.', example: '2026-12-01T17:00:00Z' })

const taskExample = {
    id: '5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d',
    project_id: '0b6f2c1e-3d4a-4b5c-8d9e-1f2a3b4c5d6e',
    title: 'Renew passport',
    description: 'Book an appointment at the town hall; bring two photos.',
    completed: false,
    completed_at: null,
    priority: 'high',
    due_at: '2026-12-01T17:00:00.000000Z',
    tags: ['errands', 'paperwork'],
    assignee_id: null,
    created_by: '7c9e6679-7425-40de-944b-e07fc1f90ae7',
    created_at: '2026-11-23T09:30:00.123456Z',
    updated_at: '2026-11-23T09:30:00.123456Z',
  }

/** A project a task belongs to; on writes, one the caller owns or edits. */
const ProjectId = Type.String({ ...Uuid, description: 'The project the task belongs to (your Inbox unless given on create). Changing it moves the task: you must be owner or editor of both projects, and an assignee who is not a member of the new project is cleared.' })
const AssigneeId = Nullable(Uuid, { description: 'The member of the task\'s project it is assigned to, or null. Assigning someone who is not a member of the project is a 422 `ASSIGNEE_NOT_MEMBER`; removing a member from the project clears their assignments there.', example: null })

export const Task = Type.Object({
  id: Uuid,
  project_id: ProjectId,
  title: TaskTitle,
  description: TaskDescription,
  completed: Type.Boolean({ example: false }),
  completed_at: Nullable(TaskTimestamp, { description: 'When the task was completed; null while it is not.', example: null }),
  priority: Priority,
  due_at: Nullable(TaskTimestamp, { description: 'When the task is due, or null.', example: '2026-12-01T17:00:00.000000Z' }),
  tags: Type.Array(Tag, { example: ['errands', 'paperwork'] }),
  assignee_id: AssigneeId,
  created_by: Nullable(Uuid, { description: 'Who created the task (set by the server); null once that account is deleted.', example: '7c9e6679-7425-40de-944b-e07fc1f90ae7' }),
  created_at: TaskTimestamp,
  updated_at: Type.String({ ...TaskTimestamp, description: 'Moves forward on every write.' }),
}, {
  $id: 'Task',
  title: 'Task',
  description: 'A task in a project: every member of the project sees it, its owner and editors write it. Its `ETag` changes on every write.',
  example: taskExample,
})
export type Task = Static<typeof Task>

/** The fields a client writes; create and replace take them all, a merge patch any of them. */
const writable = {
  project_id: Type.Optional(ProjectId),
  assignee_id: Type.Optional(AssigneeId),
  title: TaskTitle,
  description: Type.Optional(TaskDescription),
  priority: Type.Optional(Priority),
  due_at: Type.Optional(DueAt),
  tags: Type.Optional(Tags),
  completed: Type.Optional(Completed),
}

export const TaskCreate = Type.Object(writable, {
  $id: 'TaskCreate',
  title: 'TaskCreate',
  additionalProperties: false,
  description: 'A new task. Omitted fields take their defaults: your Inbox, nobody assigned, description and due_at null, priority `medium`, no tags, not completed. Unknown fields are refused.',
  example: { title: 'Renew passport', priority: 'high', due_at: '2026-12-01T17:00:00Z', tags: ['errands'] },
})
export type TaskCreate = Static<typeof TaskCreate>

export const TaskReplace = Type.Object(writable, {
  $id: 'TaskReplace',
  title: 'TaskReplace',
  additionalProperties: false,
  description: 'Every writable field of a task. Omitted fields are reset to their defaults (as on create), not kept, except `project_id` and `assignee_id`: omitted, they are kept, so that a client that predates projects neither moves nor unassigns tasks. Unknown fields are refused.',
  example: { title: 'Renew passport', description: null, priority: 'medium', due_at: null, tags: [], completed: true },
})
export type TaskReplace = Static<typeof TaskReplace>

export const TaskPatch = Type.Object({ ...writable, title: Type.Optional(TaskTitle) }, {
  $id: 'TaskPatch',
  title: 'TaskPatch',
  additionalProperties: false,
  description: 'A JSON merge patch (RFC 7396): fields present are set, absent ones kept; `null` clears the nullable fields (description, due_at). Unknown fields are refused.',
  example: { completed: true },
})
export type TaskPatch = Static<typeof TaskPatch>

const cursorExample = 'WyIyMDI2LTExLTIzVDA5OjMwOjAwLjEyMzQ1NloiLCI1ZjBjNmE0ZS04YTViLTRhNTMtOWE4ZS0yYThmN2Y5YzFiMmQiXQ.3q2-7wXxVYk0a1bC2dE3fA'

export const TaskPage = Page(Task, {
  items: { description: 'At most `limit` tasks, in the requested order.' },
  nextCursor: { description: 'Pass as `cursor` to get the next page (also sent in the `Link` header); null on the last page.', example: cursorExample },
  $id: 'TaskPage',
  title: 'TaskPage',
  description: 'One page of your tasks.',
  example: { items: [taskExample], next_cursor: cursorExample },
})
export type TaskPage = Static<typeof TaskPage>

// The list's query parameters (TaskListQuery) and sort orders are derived from the list's
// declaration, with its filters: src/repositories/task-query.ts.

/** An RFC 9110 entity-tag list (`"3"`, `W/"3", "4"`) or `*`. */
const entityTagList = '^\\s*(\\*|(W/)?"[\\x21\\x23-\\x7E]*"(\\s*,\\s*(W/)?"[\\x21\\x23-\\x7E]*")*)\\s*$'

export const ConditionalReadHeaders = Type.Object({
  'if-none-match': Type.Optional(Type.String({
    maxLength: 1024,
    pattern: entityTagList,
    description: 'The `ETag` you hold (or several, or `*`): when the task still matches, the answer is 304 with no body. Weak comparison (`W/"3"` matches `"3"`).',
    example: '"3"',
  })),
})
export type ConditionalReadHeaders = Static<typeof ConditionalReadHeaders>

export const ConditionalWriteHeaders = Type.Object({
  'if-match': Type.Optional(Type.String({
    maxLength: 1024,
    pattern: entityTagList,
    description: 'Only write when the task\'s current `ETag` is one of these (strong comparison: a weak `W/"…"` tag never matches), or when it exists at all with `*`. Otherwise 412 and nothing changes. Omit it to write unconditionally.',
    example: '"3"',
  })),
})
export type ConditionalWriteHeaders = Static<typeof ConditionalWriteHeaders>

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({
    minLength: 1,
    maxLength: 255,
    description: 'A unique key (a UUID is a good choice) that makes retrying this POST safe. Within 24 hours, the same key with the same JSON body (key order and white space do not matter) replays the first response — status, `Location`, `ETag` and body, with `Idempotent-Replayed: true` — and creates nothing. The same key with another body is 422. A duplicate sent while the first is still running is answered at once with 409 `IDEMPOTENCY_IN_FLIGHT` and `Retry-After`; retry then to get the replay. A request refused as invalid, or one that failed, is not remembered, so a corrected retry may reuse its key. Keys are per user.',
    example: '0f8b7f7e-3c1a-4a8e-9d55-3c2f1f0b9e61',
  })),
})
export type IdempotencyHeaders = Static<typeof IdempotencyHeaders>
