/**
 * Property-based paging: for random tasks, filters, sorts and page sizes, following `next_cursor`
 * returns exactly the filtered, sorted set, each task once — and stays exact for the tasks that
 * live through random inserts and deletes between pages.
 */
import { randomUUID } from 'node:crypto'
import tap from 'tap'
import fc from 'fast-check'
import { inArray, sql } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { tasks } from '../../src/db/schema.js'
import { sorts, type TaskSort } from '../../src/repositories/task-query.js'
import type { Task } from '../../src/schemas/tasks.js'
import { build, createUser, inboxOf, injectAs, type TestUser } from '../helper.js'

const titles = ['apple', 'Apple', 'banana', 'Zebra', 'éclair', 'a', 'apple pie']
const words = ['alpha', 'bravo', 'charlie']
const tagPool = ['a', 'b', 'c']
// Few distinct instants, so ties on the sort key (broken by id) are common.
const instants = ['2030-01-01T00:00:00.000001Z', '2030-01-01T00:00:00.000002Z', '2031-06-15T12:00:00.5Z', '2029-12-31T23:59:59.999999Z']
const priorities = ['low', 'medium', 'high'] as const

interface Seed { title: string, description: string | null, priority: typeof priorities[number], dueAt: string | null, tags: string[], completed: boolean, createdAt: string }

const seedArb: fc.Arbitrary<Seed> = fc.record({
  title: fc.constantFrom(...titles),
  description: fc.option(fc.subarray(words, { minLength: 1 }).map((w) => w.join(' ')), { nil: null }),
  priority: fc.constantFrom(...priorities),
  dueAt: fc.option(fc.constantFrom(...instants), { nil: null, freq: 3 }),
  tags: fc.subarray(tagPool),
  completed: fc.boolean(),
  createdAt: fc.constantFrom(...instants),
})

interface Query { sort: TaskSort, limit: number, completed?: boolean, priority?: typeof priorities[number], tag?: string[], due_before?: string, due_after?: string, q?: string }

/** A filter in about one query of five, so that most queries still match a good many tasks. */
const sometimes = <V>(arb: fc.Arbitrary<V>) => fc.oneof({ arbitrary: fc.constant(undefined), weight: 4 }, { arbitrary: arb, weight: 1 })

const queryArb: fc.Arbitrary<Query> = fc.record({
  sort: fc.constantFrom(...sorts),
  limit: fc.integer({ min: 1, max: 6 }),
  completed: sometimes(fc.boolean()),
  priority: sometimes(fc.constantFrom(...priorities)),
  tag: sometimes(fc.subarray(tagPool, { minLength: 1, maxLength: 2 })),
  due_before: sometimes(fc.constantFrom(...instants)),
  due_after: sometimes(fc.constantFrom(...instants)),
  q: sometimes(fc.constantFrom(...words)),
}).map((q) => Object.fromEntries(Object.entries(q).filter(([, v]) => v !== undefined)) as unknown as Query)

async function insertSeeds (app: FastifyInstance, userId: string, seeds: Seed[]): Promise<void> {
  if (seeds.length === 0) return
  const projectId = await inboxOf(app, userId)
  await app.db.insert(tasks).values(seeds.map((s) => ({
    projectId,
    createdBy: userId,
    title: s.title,
    description: s.description,
    priority: s.priority,
    dueAt: s.dueAt === null ? null : sql`${s.dueAt}::timestamptz`,
    tags: s.tags,
    completed: s.completed,
    completedAt: s.completed ? sql`now()` : null,
    createdAt: sql`${s.createdAt}::timestamptz`,
  })))
}

const priorityRank = { low: 0, medium: 1, high: 2 }
const instant = (s: string) => s.replace(/(\.\d+)?Z$/, (m) => `${(m.slice(0, -1) || '.').padEnd(7, '0')}Z`)

/** What the API promises, in plain TypeScript. */
function matches (task: Task, q: Query): boolean {
  if (q.completed !== undefined && task.completed !== q.completed) return false
  if (q.priority !== undefined && task.priority !== q.priority) return false
  if (q.tag !== undefined && !q.tag.every((t) => task.tags.includes(t))) return false
  if (q.due_before !== undefined && (task.due_at === null || task.due_at >= instant(q.due_before))) return false
  if (q.due_after !== undefined && (task.due_at === null || task.due_at <= instant(q.due_after))) return false
  if (q.q !== undefined && !(task.description ?? '').split(' ').includes(q.q)) return false
  return true
}

function compare (sort: TaskSort, a: Task, b: Task): number {
  const descending = sort.startsWith('-')
  const field = sort.replace('-', '') as 'created_at' | 'due_at' | 'priority' | 'title'
  let order: number
  if (field === 'due_at' && (a.due_at === null || b.due_at === null)) {
    // Nulls last whatever the direction.
    if (a.due_at === b.due_at) order = 0
    else return a.due_at === null ? 1 : -1
  } else if (field === 'priority') {
    order = priorityRank[a.priority] - priorityRank[b.priority]
  } else if (field === 'title') {
    order = Buffer.compare(Buffer.from(a.title), Buffer.from(b.title))
  } else {
    order = a[field]! < b[field]! ? -1 : a[field]! > b[field]! ? 1 : 0
  }
  if (order === 0) order = a.id < b.id ? -1 : a.id > b.id ? 1 : 0
  return descending ? -order : order
}

function queryString (q: Query, cursor?: string): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(q)) {
    for (const v of [value].flat()) params.append(key, String(v))
  }
  if (cursor !== undefined) params.set('cursor', cursor)
  return params.toString()
}

async function allTasks (app: FastifyInstance, user: TestUser): Promise<Task[]> {
  const items: Task[] = []
  let cursor: string | undefined
  do {
    const res = await injectAs(app, user, { method: 'GET', url: `/v1/tasks?${queryString({ sort: 'created_at', limit: 100 }, cursor)}` })
    items.push(...res.json<{ items: Task[] }>().items)
    cursor = res.json<{ next_cursor: string | null }>().next_cursor ?? undefined
  } while (cursor !== undefined)
  return items
}

/** Follows next_cursor to the end, calling `between` after each page; the pages' tasks in order. */
async function pageThrough (app: FastifyInstance, user: TestUser, q: Query, between: () => Promise<void> = async () => {}): Promise<Task[]> {
  const seen: Task[] = []
  let cursor: string | undefined
  for (let pages = 0; pages < 500; pages++) {
    const res = await injectAs(app, user, { method: 'GET', url: `/v1/tasks?${queryString(q, cursor)}` })
    if (res.statusCode !== 200) throw new Error(`${res.statusCode} ${res.body}`)
    const page = res.json<{ items: Task[], next_cursor: string | null }>()
    if (page.items.length > q.limit) throw new Error(`a page of ${page.items.length} > limit ${q.limit}`)
    if (page.next_cursor !== null && page.items.length !== q.limit) throw new Error('a short page before the end')
    if ((page.next_cursor === null) !== (res.headers.link === undefined)) throw new Error('Link header and next_cursor disagree')
    seen.push(...page.items)
    if (page.next_cursor === null) return seen
    cursor = page.next_cursor
    await between()
  }
  throw new Error('no end after 500 pages')
}

tap.test('paging returns exactly the filtered, sorted set, each task once', async (t) => {
  const app = await build(t)
  const [user, other] = [await createUser(app), await createUser(app)]
  await insertSeeds(app, other.id, fc.sample(seedArb, 10))
  let multiPage = 0
  await fc.assert(fc.asyncProperty(fc.array(seedArb, { minLength: 5, maxLength: 30 }), queryArb, async (seeds, q) => {
    await app.db.delete(tasks).where(sql`${tasks.createdBy} = ${user.id}`)
    await insertSeeds(app, user.id, seeds)
    const expected = (await allTasks(app, user)).filter((task) => matches(task, q)).sort((a, b) => compare(q.sort, a, b))
    const paged = await pageThrough(app, user, q)
    if (expected.length > q.limit) multiPage += 1
    t.same(paged.map((task) => task.id), expected.map((task) => task.id))
  }), { numRuns: 60 })
  t.ok(multiPage >= 15, `${multiPage} of 60 runs paged more than once`)
})

tap.test('paging stays exact for surviving tasks while others are inserted and deleted', async (t) => {
  const app = await build(t)
  const user = await createUser(app)
  let multiPage = 0
  await fc.assert(fc.asyncProperty(
    fc.array(seedArb, { minLength: 5, maxLength: 30 }), queryArb, fc.infiniteStream(fc.tuple(fc.array(seedArb, { maxLength: 3 }), fc.nat(3))),
    async (seeds, q, changes) => {
      await app.db.delete(tasks).where(sql`${tasks.createdBy} = ${user.id}`)
      await insertSeeds(app, user.id, seeds)
      const initial = await allTasks(app, user)
      const deleted = new Set<string>()
      if (initial.filter((task) => matches(task, q)).length > q.limit) multiPage += 1
      const paged = await pageThrough(app, user, q, async () => {
        const [inserts, deletes] = changes.next().value as [Seed[], number]
        await insertSeeds(app, user.id, inserts)
        const victims = fc.sample(fc.constantFrom(...initial.map((task) => task.id)), deletes)
        victims.forEach((id) => deleted.add(id))
        if (victims.length > 0) await app.db.delete(tasks).where(inArray(tasks.id, victims))
      })
      const ids = paged.map((task) => task.id)
      t.equal(new Set(ids).size, ids.length, 'no task twice')
      for (let i = 1; i < paged.length; i++) {
        if (compare(q.sort, paged[i - 1]!, paged[i]!) >= 0) t.fail(`out of order at ${i}`)
      }
      t.ok(paged.every((task) => matches(task, q)), 'only matching tasks')
      const survivors = initial.filter((task) => !deleted.has(task.id) && matches(task, q)).map((task) => task.id)
      t.same(ids.filter((id) => survivors.includes(id)).sort(), [...survivors].sort(), 'every surviving match once')
    },
  ), { numRuns: 30 })
  t.ok(multiPage >= 6, `${multiPage} of 30 runs paged more than once`)
})

tap.test('a cursor only works for its user, sort and filters', async (t) => {
  const app = await build(t)
  const [user, other] = [await createUser(app), await createUser(app)]
  await insertSeeds(app, user.id, fc.sample(seedArb, 5).map((s) => ({ ...s, tags: ['a', 'b'], completed: false })))
  await insertSeeds(app, other.id, fc.sample(seedArb, 5))
  const first = await injectAs(app, user, { method: 'GET', url: '/v1/tasks?limit=2&sort=title&tag=a&tag=b&completed=false' })
  const cursor = first.json<{ next_cursor: string }>().next_cursor
  t.match(first.headers.link, /^<\/v1\/tasks\?limit=2&sort=title&tag=a&tag=b&completed=false&cursor=[\w.-]+>; rel="next"$/)
  const page = async (who: TestUser, query: string) => await injectAs(app, who, { method: 'GET', url: `/v1/tasks?${query}&cursor=${cursor}` })
  t.equal((await page(user, 'limit=3&sort=title&tag=b&tag=a&completed=false')).statusCode, 200, 'another limit and tag order are fine')
  for (const [who, query] of [[user, 'sort=-title&tag=a&tag=b&completed=false'], [user, 'sort=title&tag=a&completed=false'], [user, 'sort=title&tag=a&tag=b'], [other, 'sort=title&tag=a&tag=b&completed=false']] as const) {
    const res = await page(who, query)
    t.equal(res.statusCode, 400, `${who === other ? 'another user' : query}: 400`)
    t.equal(res.json().code, 'INVALID_CURSOR')
  }
  const [payload, mac] = cursor.split('.') as [string, string]
  for (let i = 0; i < cursor.length; i++) {
    const altered = cursor.slice(0, i) + (cursor[i] === 'A' ? 'B' : 'A') + cursor.slice(i + 1)
    if (altered === cursor || altered.indexOf('.') !== payload.length) continue
    const res = await injectAs(app, user, { method: 'GET', url: `/v1/tasks?limit=2&sort=title&tag=a&tag=b&completed=false&cursor=${altered}` })
    if (res.statusCode !== 400) t.fail(`altered character ${i} accepted`)
  }
  const forged = `${Buffer.from(JSON.stringify(['a', randomUUID()])).toString('base64url')}.${mac}`
  t.equal((await injectAs(app, user, { method: 'GET', url: `/v1/tasks?limit=2&sort=title&tag=a&tag=b&completed=false&cursor=${forged}` })).statusCode, 400, 'another position under the same MAC')
})
