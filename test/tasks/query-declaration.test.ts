/**
 * The task list's declaration (src/repositories/task-query.ts) and everything derived from it must
 * agree, for every shape a list statement can take: the prepared-statement cache key differs exactly
 * when the statement's SQL does (else a cached statement with another WHERE clause would be reused),
 * the values bound are exactly the statement's placeholders, every filter present is applied, the
 * cursor context names every filter, and the API's query parameters name the declared filters.
 */
import tap from 'tap'
import { is, Placeholder } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/pg-proxy'
import type { Database } from '../../src/db/client.js'
import * as schema from '../../src/db/schema.js'
import { createPaging } from '../../src/lib/paging.js'
import { createKeyring } from '../../src/lib/keys.js'
import {
  listParameters, listQuery, shapeOf, sorts, taskColumns, taskFilterNames, type TaskFilters, TaskListQuery, taskList, type TaskListRequest, taskOf,
  type TaskRecord,
} from '../../src/repositories/task-query.js'
import { Task } from '../../src/schemas/tasks.js'

// Builds statements without a connection: nothing is ever run.
const db = drizzle(async () => ({ rows: [] }), { schema }) as unknown as Database

/** A value for a present filter that no other parameter has, so where it is bound can be seen. */
const valueOf = (name: string) => ({ filter: name })

/** Every subset of the declared filters (2^n of them), each as the request's filters. */
function filterCombinations (): Array<Partial<Record<string, unknown>>> {
  const combinations: Array<Partial<Record<string, unknown>>> = []
  for (let mask = 0; mask < 2 ** taskFilterNames.length; mask++) {
    combinations.push(Object.fromEntries(taskFilterNames.map((name, i) => [name, (mask >> i) & 1 ? valueOf(name) : undefined])))
  }
  return combinations
}

function requestOf (sort: typeof sorts[number], filters: Partial<Record<string, unknown>>, after: boolean): TaskListRequest {
  return { sort, limit: 20, after: after ? ['key', '00000000-0000-4000-8000-000000000000'] : undefined, filters: filters as TaskFilters }
}

tap.test('the cache key differs exactly when the SQL differs, and every value bound is a placeholder of the SQL', async (t) => {
  const sqlOfKey = new Map<string, string>()
  const keyOfSql = new Map<string, string>()
  let shapes = 0
  let failures = 0
  const fail = (message: string) => { if (failures++ < 10) t.fail(message) }
  for (const sort of sorts) {
    for (const after of [false, true]) {
      for (const filters of filterCombinations()) {
        const request = requestOf(sort, filters, after)
        const shape = shapeOf(request)
        const { sql: text, params } = listQuery(db, shape).toSQL()
        shapes += 1

        // One key, one statement; one statement, one key.
        const known = sqlOfKey.get(shape.key)
        if (known !== undefined && known !== text) fail(`key ${shape.key} names two statements:\n${known}\n${text}`)
        const knownKey = keyOfSql.get(text)
        if (knownKey !== undefined && knownKey !== shape.key) fail(`keys ${knownKey} and ${shape.key} name one statement`)
        sqlOfKey.set(shape.key, text)
        keyOfSql.set(text, shape.key)

        // The statement's parameters are all placeholders, one per $n, and the values the repository
        // binds are exactly those placeholders: none missing, none left unused.
        const placeholders = params.map((p) => is(p, Placeholder) ? p.name : undefined)
        if (placeholders.includes(undefined)) fail(`${shape.key}: a parameter is not a placeholder`)
        const positions = new Set([...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])))
        if (positions.size !== params.length || Math.max(0, ...positions) !== params.length) fail(`${shape.key}: ${params.length} parameters for $${[...positions].join(', $')}`)
        const values = listParameters('owner-id', request)
        const bound = Object.keys(values).filter((name) => values[name] !== undefined).sort()
        const used = [...new Set(placeholders as string[])].sort()
        if (bound.join() !== used.join()) fail(`${shape.key}: binds ${bound.join()} but the SQL uses ${used.join()}`)

        // Every filter present is applied: its value is bound to a placeholder of its own.
        for (const name of taskFilterNames) {
          if (filters[name] !== undefined && !placeholders.includes(name)) fail(`${shape.key}: the ${name} filter is not applied`)
        }
      }
    }
  }
  t.equal(shapes, sorts.length * 2 * 2 ** taskFilterNames.length, 'every shape was built')
  t.equal(sqlOfKey.size, shapes, 'every shape has a statement of its own')
  t.equal(failures, 0, 'no shape disagrees')
})

tap.test('a shape depends on which filters are present, not on their values', async (t) => {
  const one = shapeOf(requestOf('title', { tag: ['a'], q: 'x' }, false))
  const other = shapeOf(requestOf('title', { tag: ['b', 'c'], q: 'y' }, false))
  t.equal(one.key, other.key)
  t.not(shapeOf(requestOf('title', {}, false)).key, one.key)
})

tap.test('the API\'s query parameters are the declared filters, then sort, limit and cursor', async (t) => {
  t.same(Object.keys(TaskListQuery.properties), [...taskFilterNames, 'sort', 'limit', 'cursor'])
  t.same((TaskListQuery.properties.sort as unknown as { enum: string[] }).enum, Object.keys(taskList.sorts))
  t.equal(TaskListQuery.properties.sort.default, taskList.defaultSort)
  t.equal(TaskListQuery.properties.limit.default, taskList.defaultLimit)
})

tap.test('the representation is the Task schema\'s fields plus the version, each selected under its name', async (t) => {
  t.same(Object.keys(taskList.columns).sort(), [...Object.keys(Task.properties), 'version'].sort())
  t.same(Object.keys(taskColumns), Object.keys(taskList.columns))
  const { sql: text } = db.select(taskColumns).from(schema.tasks).toSQL()
  for (const name of Object.keys(taskList.columns)) t.match(text, new RegExp(`"${name}"`), `${name} is selected under its name`)
  for (const sort of Object.values(taskList.sorts)) t.ok(sort.field in taskList.columns, `the ${sort.field} sort key is a column`)

  const row = {
    id: 'x', project_id: 'p', title: 't', description: null, completed: true, completed_at: '2026-11-23T09:30:00.1+00', priority: 'low', due_at: null, tags: [], assignee_id: null, created_by: 'u',
    created_at: '2026-11-23T09:30:00+00', updated_at: '2026-11-23T09:30:00.123456+00', version: 1,
  } satisfies TaskRecord
  t.same(taskOf(row), {
    ...row, completed_at: '2026-11-23T09:30:00.100000Z', created_at: '2026-11-23T09:30:00.000000Z', updated_at: '2026-11-23T09:30:00.123456Z',
  }, 'timestamps become RFC 3339 with microseconds, in place; nulls stay null')

  // taskOf names the timestamp columns itself: it must finish exactly those the declaration marks.
  const timestamps = Object.entries(taskList.columns).filter(([, column]) => column.timestamp).map(([name]) => name)
  const stamped = Object.fromEntries(Object.keys(taskList.columns).map((name) => [name, '2026-11-23T09:30:00+00'])) as unknown as TaskRecord
  const finished = taskOf({ ...stamped })
  t.same(Object.keys(taskList.columns).filter((name) => finished[name as keyof TaskRecord] !== stamped[name as keyof TaskRecord]), timestamps,
    'every declared timestamp, and nothing else, is finished')
})

tap.test('the cursor context names every declared filter, and equivalent requests share it', async (t) => {
  const paging = createPaging(taskList, { keys: createKeyring({ SECRET_KEY: 'x'.repeat(32) }).keysFor('tasksCursor') })
  const base = paging.open('user', {})
  t.equal(base.sort, taskList.defaultSort)
  t.equal(base.limit, taskList.defaultLimit)
  const samples: Record<string, unknown> = { project_id: '0b6f2c1e-3d4a-4b5c-8d9e-1f2a3b4c5d6e', assignee_id: 'me', completed: false, priority: 'high', tag: ['a'], due_before: '2026-01-01T00:00:00Z', due_after: '2026-01-01T00:00:00Z', q: 'x' }
  for (const name of taskFilterNames) {
    const value = samples[name] ?? valueOf(name)
    t.not(paging.open('user', { [name]: value }).context, base.context, `the ${name} filter is part of the context`)
  }
  t.not(paging.open('other', {}).context, base.context, 'who asks is part of the context')
  t.not(paging.open('user', { sort: 'title' }).context, base.context, 'the sort is part of the context')
  t.equal(paging.open('user', { limit: 5 }).context, base.context, 'the page size is not')
  t.equal(paging.open('user', { tag: ['b', 'a', 'b'] }).context, paging.open('user', { tag: ['a', 'b'] }).context, 'tags in another order or repeated are one filter')
  t.same(paging.open('user', { tag: ['b', 'a', 'b'] }).filters.tag, ['a', 'b'])

  const first = paging.open('user', { tag: ['a'] })
  const cursor = paging.cursorAfter(first, ['k', 'id'])!
  t.same(paging.open('user', { tag: ['a'], cursor }).after, ['k', 'id'], 'a cursor opens the page after its position')
  t.equal(paging.tryOpen('user', { cursor }), undefined, 'but not under other filters')
  t.throws(() => paging.open('user', { tag: ['a'], cursor: `${cursor}x` }), { code: 'INVALID_CURSOR', statusCode: 400 })
  const other = createPaging(taskList, { keys: createKeyring({ SECRET_KEY: 'x'.repeat(32) }).keysFor('pageTasksCursor') })
  t.equal(other.tryOpen('user', { tag: ['a'], cursor }), undefined, 'nor for a list of another purpose (the pages\' cursors)')
})
