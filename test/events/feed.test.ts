/**
 * The change feed through the API: every change to a task, a project or a membership records its
 * event with the resource as the API returned it; a refused or rolled-back change records none, an
 * idempotent replay nothing new; who sees which events; paging with `next_after`; bad parameters;
 * retention and 410 SYNC_EXPIRED.
 */
import tap from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'drizzle-orm'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { assertProblem, build, createUser, injectAs, type TestUser } from '../helper.js'

interface Event { id: string, type: string, occurred_at: string, actor_id: string | null, project_id: string, data: Record<string, unknown> }
interface EventPage { items: Event[], next_after: string }

const json = <T>(res: LightMyRequestResponse): T => res.json<T>()

/**
 * The user's events after `after`, following `next_after` (three at a time) until at least `count`
 * have come, and where that ends. An event appears once every older transaction on the server has
 * finished, those of tests running beside this one included, so a poll right after a write may not
 * show it yet. A test that expects no event writes a marker of its own and waits for that.
 */
async function drain (app: FastifyInstance, user: TestUser, after: string | undefined, count: number): Promise<{ events: Event[], next: string }> {
  const events: Event[] = []
  let next = after
  const deadline = Date.now() + 10_000
  for (;;) {
    const res = await injectAs(app, user, { method: 'GET', url: `/v1/events?limit=3${next === undefined ? '' : `&after=${next}`}` })
    if (res.statusCode !== 200) throw new Error(`GET /v1/events: ${res.statusCode} ${res.body}`)
    const page = json<EventPage>(res)
    events.push(...page.items)
    next = page.next_after
    if (page.items.length < 3) {
      if (events.length >= count || Date.now() > deadline) return { events, next }
      await sleep(20)
    }
  }
}

/** A task of the user's own, in their Inbox: an event they will see, after any they may wrongly see. */
async function marker (app: FastifyInstance, user: TestUser): Promise<string> {
  return json<{ id: string }>(await injectAs(app, user, { method: 'POST', url: '/v1/tasks', payload: { title: 'Marker' } })).id
}

const summary = (events: Event[]) => events.map((e) => e.data.title === 'Marker' ? 'marker' : e.type)

tap.test('each change records its event, with the resource as the API returned it', async (t) => {
  const app = await build(t)
  const [owner, editor] = [await createUser(app, 'owner'), await createUser(app, 'editor')]
  const { events: before, next: start } = await drain(app, owner, undefined, 1)
  t.same(before.map((e) => e.type), ['project.created'], 'the Inbox made with the account is the first event')

  const project = json<Record<string, unknown>>(await injectAs(app, owner, { method: 'POST', url: '/v1/projects', payload: { name: 'Kitchen' } }))
  const renamed = json<Record<string, unknown>>(await injectAs(app, owner, { method: 'PATCH', url: `/v1/projects/${project.id as string}`, payload: { name: 'Kitchen 2' }, headers: { 'content-type': 'application/merge-patch+json' } }))
  const member = json<Record<string, unknown>>(await injectAs(app, owner, { method: 'POST', url: `/v1/projects/${project.id as string}/members`, payload: { username: editor.username, role: 'viewer' } }))
  const promoted = json<Record<string, unknown>>(await injectAs(app, owner, { method: 'PATCH', url: `/v1/projects/${project.id as string}/members/${editor.id}`, payload: { role: 'editor' }, headers: { 'content-type': 'application/merge-patch+json' } }))
  const task = json<Record<string, unknown>>(await injectAs(app, editor, { method: 'POST', url: '/v1/tasks', payload: { title: 'Order tiles', project_id: project.id, assignee_id: editor.id, tags: ['b', 'a'], due_at: '2027-01-02T03:04:05.678Z' } }))
  const done = json<Record<string, unknown>>(await injectAs(app, owner, { method: 'PATCH', url: `/v1/tasks/${task.id as string}`, payload: { completed: true }, headers: { 'content-type': 'application/merge-patch+json' } }))
  const removed = await injectAs(app, owner, { method: 'DELETE', url: `/v1/projects/${project.id as string}/members/${editor.id}` })
  t.equal(removed.statusCode, 204)
  const unassigned = json<Record<string, unknown>>(await injectAs(app, owner, { method: 'GET', url: `/v1/tasks/${task.id as string}` }))
  t.equal(unassigned.assignee_id, null)
  t.equal((await injectAs(app, owner, { method: 'DELETE', url: `/v1/tasks/${task.id as string}` })).statusCode, 204)
  const { events, next } = await drain(app, owner, start, 9)
  t.equal((await injectAs(app, owner, { method: 'DELETE', url: `/v1/projects/${project.id as string}` })).statusCode, 204)
  // Once the project is gone, its members see its deletion, and no longer its earlier events.
  events.push(...(await drain(app, owner, next, 1)).events)

  t.same(events.map((e) => e.type), [
    'project.created', 'project.updated', 'member.added', 'member.updated', 'task.created', 'task.updated',
    'member.removed', 'task.updated', 'task.deleted', 'project.deleted',
  ], 'in the order the changes were made')
  const [created, updated, added, changed, taskCreated, taskUpdated, left, taskUnassigned, taskDeleted, projectDeleted] = events as [Event, Event, Event, Event, Event, Event, Event, Event, Event, Event]
  t.same(created.data, project, 'project.created: the project as its creator got it')
  t.same(updated.data, renamed)
  t.same(added.data, member, 'member.added: the member as the response showed them')
  t.same(changed.data, promoted)
  t.same(taskCreated.data, task, 'task.created: the task exactly as POST returned it')
  t.equal(taskCreated.actor_id, editor.id, 'the actor is whoever made the change')
  t.same(taskUpdated.data, done)
  t.same(left.data, promoted, 'member.removed: the member as they were')
  t.same(taskUnassigned.data, unassigned, 'removing a member records the tasks their removal unassigned')
  t.same(taskDeleted.data, { id: task.id }, 'a deletion carries the id only')
  t.same(projectDeleted.data, { id: project.id })
  for (const event of events) {
    t.equal(event.project_id, project.id)
    t.match(event.occurred_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/)
    if (event !== events[0]) t.ok(event.actor_id === owner.id || event.actor_id === editor.id)
  }
  t.same([...events.map((e) => e.id)].sort((a, b) => a.localeCompare(b, 'en', { numeric: true })), events.map((e) => e.id), 'ids follow the order of the feed')
})

tap.test('a change that is refused or rolled back records nothing; an idempotent replay nothing new', async (t) => {
  const app = await build(t)
  const [owner, viewer] = [await createUser(app, 'owner'), await createUser(app, 'viewer')]
  const project = json<{ id: string }>(await injectAs(app, owner, { method: 'POST', url: '/v1/projects', payload: { name: 'Shared' } }))
  await injectAs(app, owner, { method: 'POST', url: `/v1/projects/${project.id}/members`, payload: { username: viewer.username, role: 'viewer' } })
  const { next } = await drain(app, owner, undefined, 3)

  assertProblem(t, await injectAs(app, viewer, { method: 'POST', url: '/v1/tasks', payload: { title: 'No', project_id: project.id } }), 403, 'ROLE_FORBIDDEN')
  assertProblem(t, await injectAs(app, owner, { method: 'POST', url: '/v1/tasks', payload: { title: 'No', project_id: project.id, assignee_id: '00000000-0000-4000-8000-000000000000' } }), 422, 'ASSIGNEE_NOT_MEMBER')
  assertProblem(t, await injectAs(app, owner, { method: 'PATCH', url: `/v1/projects/${project.id}`, payload: { name: 'Late' }, headers: { 'content-type': 'application/merge-patch+json', 'if-match': '"0"' } }), 412, 'PRECONDITION_FAILED')
  // A unit of work that fails after its writes: the task and its event go together.
  await t.rejects(app.db.transaction(async (tx) => {
    await app.tasksRepository.create(owner.id, { project_id: project.id, assignee_id: null, title: 'Rolled back', description: null, priority: 'low', due_at: null, tags: [], completed: false }, tx)
    throw new Error('abandoned')
  }), /abandoned/)
  await marker(app, owner)
  const none = await drain(app, owner, next, 1)
  t.same(summary(none.events), ['marker'], 'no event for what did not happen')

  const request = { method: 'POST' as const, url: '/v1/tasks', payload: { title: 'Once' }, headers: { 'idempotency-key': 'feed-replay-1' } }
  const first = await injectAs(app, owner, request)
  const replay = await injectAs(app, owner, request)
  t.equal(replay.headers['idempotent-replayed'], 'true')
  await marker(app, owner)
  t.same((await drain(app, owner, none.next, 2)).events.map((e) => e.data.title === 'Marker' ? 'marker' : e.data.id), [json<{ id: string }>(first).id, 'marker'], 'one event for the task, none for the replay')
})

tap.test('who sees which events', async (t) => {
  const app = await build(t)
  const [owner, member, outsider] = [await createUser(app, 'owner'), await createUser(app, 'member'), await createUser(app, 'outsider')]
  const project = json<{ id: string }>(await injectAs(app, owner, { method: 'POST', url: '/v1/projects', payload: { name: 'Garden' } }))
  await injectAs(app, owner, { method: 'POST', url: '/v1/tasks', payload: { title: 'Before you came', project_id: project.id } })
  // A place after the project's first events: the member's own marker, written after them.
  await marker(app, member)
  const memberStart = (await drain(app, member, undefined, 2)).next
  const outsiderStart = (await drain(app, outsider, undefined, 1)).next

  await injectAs(app, owner, { method: 'POST', url: `/v1/projects/${project.id}/members`, payload: { username: member.username, role: 'editor' } })
  await injectAs(app, owner, { method: 'POST', url: '/v1/tasks', payload: { title: 'While you are here', project_id: project.id } })
  const joined = await drain(app, member, memberStart, 2)
  t.same(joined.events.map((e) => e.type), ['member.added', 'task.created'], 'a new member sees their joining and what follows, not what came before')
  t.equal(joined.events[0]!.data.user_id, member.id)

  await injectAs(app, owner, { method: 'DELETE', url: `/v1/projects/${project.id}/members/${member.id}` })
  await injectAs(app, owner, { method: 'POST', url: '/v1/tasks', payload: { title: 'After you left', project_id: project.id } })
  await marker(app, member)
  const left = await drain(app, member, joined.next, 2)
  t.same(summary(left.events), ['member.removed', 'marker'], 'a removed member sees their removal and nothing after it')

  await injectAs(app, owner, { method: 'POST', url: `/v1/projects/${project.id}/members`, payload: { username: member.username, role: 'viewer' } })
  t.equal((await injectAs(app, owner, { method: 'DELETE', url: `/v1/projects/${project.id}` })).statusCode, 204)
  await marker(app, member)
  const deleted = await drain(app, member, left.next, 2)
  t.same(summary(deleted.events), ['project.deleted', 'marker'], 'the deletion of a project reaches its members (its earlier events go with it)')
  await marker(app, outsider)
  t.same(summary((await drain(app, outsider, outsiderStart, 1)).events), ['marker'], 'an outsider sees nothing of it')
})

tap.test('an account\'s deletion reaches the members of its projects and of the projects it was in, and unassigns its tasks there', async (t) => {
  const app = await build(t)
  const [leaving, other] = [await createUser(app, 'leaving'), await createUser(app, 'other')]
  const theirs = json<{ id: string }>(await injectAs(app, leaving, { method: 'POST', url: '/v1/projects', payload: { name: 'Theirs' } }))
  const mine = json<{ id: string }>(await injectAs(app, other, { method: 'POST', url: '/v1/projects', payload: { name: 'Mine' } }))
  await injectAs(app, leaving, { method: 'POST', url: `/v1/projects/${theirs.id}/members`, payload: { username: other.username, role: 'editor' } })
  await injectAs(app, other, { method: 'POST', url: `/v1/projects/${mine.id}/members`, payload: { username: leaving.username, role: 'editor' } })
  const assigned = json<{ id: string }>(await injectAs(app, other, { method: 'POST', url: '/v1/tasks', payload: { title: 'Theirs to do', project_id: mine.id, assignee_id: leaving.id } }))
  // Six events: their Inbox, both projects' creations, the two joinings and the task.
  const { next } = await drain(app, other, undefined, 6)
  t.equal((await injectAs(app, leaving, { method: 'DELETE', url: '/v1/users/me' })).statusCode, 204)
  const { events } = await drain(app, other, next, 3)
  t.same(events.map((e) => [e.type, e.project_id, e.actor_id]).sort(), [['member.removed', mine.id, null], ['project.deleted', theirs.id, null], ['task.updated', mine.id, null]].sort())
  const unassigned = json<Record<string, unknown>>(await injectAs(app, other, { method: 'GET', url: `/v1/tasks/${assigned.id}` }))
  t.same(events.find((e) => e.type === 'task.updated')!.data, unassigned, 'its assignment is cleared as a change of the task')
  t.equal(unassigned.assignee_id, null)
})

tap.test('paging: next_after is always set, and a caught-up poll resumes where it is', async (t) => {
  const app = await build(t)
  const user = await createUser(app)
  const first = await drain(app, user, undefined, 1)
  t.equal(first.events.length, 1)
  const empty = json<EventPage>(await injectAs(app, user, { method: 'GET', url: `/v1/events?after=${first.next}` }))
  t.same(empty.items, [])
  t.match(empty.next_after, /^\d+-\d+$/, 'set when there is nothing new')
  for (let i = 0; i < 5; i++) await injectAs(app, user, { method: 'POST', url: '/v1/tasks', payload: { title: `Task ${i}` } })
  await drain(app, user, empty.next_after, 5)
  const two = json<EventPage>(await injectAs(app, user, { method: 'GET', url: `/v1/events?after=${empty.next_after}&limit=2` }))
  t.same(two.items.map((e) => e.data.title), ['Task 0', 'Task 1'])
  t.equal(two.next_after, two.items[1]!.id, 'a full page resumes after its last event')
  const rest = json<EventPage>(await injectAs(app, user, { method: 'GET', url: `/v1/events?after=${two.next_after}` }))
  t.same(rest.items.map((e) => e.data.title), ['Task 2', 'Task 3', 'Task 4'])
  const fromEvent = json<EventPage>(await injectAs(app, user, { method: 'GET', url: `/v1/events?after=${two.items[0]!.id}&limit=1` }))
  t.same(fromEvent.items.map((e) => e.data.title), ['Task 1'], 'an event id is a place to resume after')

  for (const query of ['after=abc', 'after=1-', 'after=-1-2', 'after=123456789012345678901-1', 'limit=0', 'limit=501', 'since=1']) {
    assertProblem(t, await injectAs(app, user, { method: 'GET', url: `/v1/events?${query}` }), 400, 'VALIDATION_FAILED')
  }
  const anonymous = await app.inject({ method: 'GET', url: '/v1/events' })
  t.equal(anonymous.statusCode, 401)
})

tap.test('events past their retention are purged; resuming from before them is 410 SYNC_EXPIRED', async (t) => {
  const app = await build(t, { EVENTS_RETENTION_DAYS: '7' })
  const user = await createUser(app)
  for (let i = 0; i < 3; i++) await injectAs(app, user, { method: 'POST', url: '/v1/tasks', payload: { title: `Old ${i}` } })
  const { events, next } = await drain(app, user, undefined, 4)
  t.equal(events.length, 4)
  await app.db.execute(sql`update events set occurred_at = now() - interval '8 days' where actor_id = ${user.id}::uuid and data->>'title' in ('Old 0', 'Old 1')`)
  await app.runHousekeeping()
  const fresh = json<EventPage>(await injectAs(app, user, { method: 'GET', url: '/v1/events' }))
  t.same(fresh.items.map((e) => e.type === 'task.created' ? e.data.title : e.type), ['project.created', 'Old 2'], 'the purged events are gone')
  assertProblem(t, await injectAs(app, user, { method: 'GET', url: `/v1/events?after=${events[0]!.id}` }), 410, 'SYNC_EXPIRED')
  t.equal((await injectAs(app, user, { method: 'GET', url: `/v1/events?after=${events[2]!.id}` })).statusCode, 200, 'resuming after the last purged event loses nothing')
  t.equal((await injectAs(app, user, { method: 'GET', url: `/v1/events?after=${next}` })).statusCode, 200)
})

tap.test('moving a task tells the members it leaves behind', async (t) => {
  const app = await build(t)
  const [owner, behind] = [await createUser(app, 'owner'), await createUser(app, 'behind')]
  const from = json<{ id: string }>(await injectAs(app, owner, { method: 'POST', url: '/v1/projects', payload: { name: 'From' } }))
  const to = json<{ id: string }>(await injectAs(app, owner, { method: 'POST', url: '/v1/projects', payload: { name: 'To' } }))
  await injectAs(app, owner, { method: 'POST', url: `/v1/projects/${from.id}/members`, payload: { username: behind.username, role: 'viewer' } })
  const task = json<{ id: string }>(await injectAs(app, owner, { method: 'POST', url: '/v1/tasks', payload: { title: 'Travelling', project_id: from.id } }))
  // Their Inbox, the creation of From (they are a member now), their joining and the task.
  const { next } = await drain(app, behind, undefined, 4)
  const moved = json<Record<string, unknown>>(await injectAs(app, owner, { method: 'PATCH', url: `/v1/tasks/${task.id}`, payload: { project_id: to.id }, headers: { 'content-type': 'application/merge-patch+json' } }))
  await injectAs(app, owner, { method: 'PATCH', url: `/v1/tasks/${task.id}`, payload: { title: 'Arrived' }, headers: { 'content-type': 'application/merge-patch+json' } })
  await marker(app, behind)
  const { events } = await drain(app, behind, next, 2)
  t.same(summary(events), ['task.updated', 'marker'], 'the move, and nothing of the task after it')
  t.same(events[0]!.data, moved, 'the task as it is in its new project')
  t.equal(events[0]!.project_id, to.id)
})
