/**
 * Creates made while every connection is busy are written together, in one statement
 * (docs/decisions/0035-creates-batched.md). Each caller still gets their own task, their own
 * event and their own error, as if the create had run alone; a batch the database fails is run
 * again one create at a time, so one create's failure is not the others'.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'drizzle-orm'
import tap from 'tap'
import { queryRows } from '../../src/db/client.js'
import { assertProblem, build, createUser, inboxOf, injectAs, type TestUser } from '../helper.js'

tap.test('concurrent creates', async (t) => {
  const app = await build(t, { WEBHOOK_DELIVERY: 'false', RATE_LIMIT_MAX: '1000000' })
  const [owner, editor, viewer, outsider] = await Promise.all([createUser(app, 'owner'), createUser(app, 'editor'), createUser(app, 'viewer'), createUser(app, 'outsider')])
  const project = (await injectAs(app, owner!, { method: 'POST', url: '/v1/projects', payload: { name: 'Shared' } })).json<{ id: string }>().id
  for (const [user, role] of [[editor!, 'editor'], [viewer!, 'viewer']] as const) {
    const added = await injectAs(app, owner!, { method: 'POST', url: `/v1/projects/${project}/members`, payload: { username: user.username, role } })
    t.equal(added.statusCode, 201, `${role} added`)
  }
  const create = async (user: TestUser, payload: Record<string, unknown>) => await injectAs(app, user, { method: 'POST', url: '/v1/tasks', payload })
  /** The task.created events of these tasks: who wrote each, and in which transaction. */
  const eventsOf = async (ids: string[]) => await queryRows<{ task: string, actor: string, title: string, txid: string }>(app.db, sql`
    select data->>'id' as task, actor_id as actor, data->>'title' as title, txid::text as txid from events
    where type = 'task.created' and data->>'id' = any(${sql.param(ids)}::text[])`)
  /**
   * Sends the creates while a transaction of the test's own keeps tasks locked against writes, so
   * that they queue up behind the first ones and are written together: on PostgreSQL the lock stops
   * the inserts; the embedded database runs nothing else while a transaction is open.
   */
  const whileWritesWait = async <R>(send: () => Promise<R>): Promise<R> => {
    let sent: Promise<R> | undefined
    await app.database.db.transaction(async (tx) => {
      await tx.execute(sql`lock table tasks in share mode`)
      sent = send()
      await sleep(1_000)
    })
    return await sent!
  }

  await t.test('each caller gets their own task and event, or their own error', async (t) => {
    const calls: Array<{ user: TestUser, payload: Record<string, unknown>, status: number, code?: string }> = []
    for (let i = 0; i < 8; i++) {
      calls.push({ user: owner!, payload: { title: `owner inbox ${i}`, priority: 'high', tags: [`t${i}`], due_at: `2027-01-0${i + 1}T09:00:00Z` }, status: 201 })
      calls.push({ user: editor!, payload: { title: `editor shared ${i}`, project_id: project, assignee_id: viewer!.id, completed: i % 2 === 0 }, status: 201 })
    }
    calls.push({ user: viewer!, payload: { title: 'viewer writes', project_id: project }, status: 403, code: 'ROLE_FORBIDDEN' })
    calls.push({ user: outsider!, payload: { title: 'outsider writes', project_id: project }, status: 404, code: 'PROJECT_NOT_FOUND' })
    calls.push({ user: editor!, payload: { title: 'assigned to an outsider', project_id: project, assignee_id: outsider!.id }, status: 422, code: 'ASSIGNEE_NOT_MEMBER' })
    const responses = await whileWritesWait(async () => await Promise.all(calls.map(async ({ user, payload }) => await create(user, payload))))

    const created: string[] = []
    for (const [i, res] of responses.entries()) {
      const { user, payload, status, code } = calls[i]!
      if (code !== undefined) {
        assertProblem(t, res, status, code)
        continue
      }
      t.equal(res.statusCode, 201, `${String(payload.title)}: created`)
      const task = res.json<Record<string, unknown>>()
      created.push(task.id as string)
      t.equal(task.title, payload.title, 'its own title')
      t.equal(task.created_by, user.id, 'made by its caller')
      t.equal(task.project_id, payload.project_id ?? await inboxOf(app, user.id), 'in the project asked for, or the caller\'s Inbox')
      t.equal(task.assignee_id, payload.assignee_id ?? null, 'its assignee')
      t.equal(task.completed, payload.completed ?? false, 'completed as asked')
      t.equal(task.completed_at === null, task.completed !== true, 'completed_at set exactly when completed')
      t.same(task.tags, payload.tags ?? [], 'its tags')
      t.equal(res.headers.location, `/v1/tasks/${String(task.id)}`, 'its Location')
      const read = await injectAs(app, user, { method: 'GET', url: `/v1/tasks/${String(task.id)}` })
      t.same(read.json(), task, 'read back as answered')
    }

    const events = await eventsOf(created)
    t.equal(events.length, created.length, 'one task.created event per task')
    const byTask = new Map(events.map((event) => [event.task, event]))
    for (const [i, res] of responses.entries()) {
      if (res.statusCode !== 201) continue
      const event = byTask.get(res.json<{ id: string }>().id)
      t.equal(event?.actor, calls[i]!.user.id, 'the event names its own caller')
      t.equal(event?.title, calls[i]!.payload.title, 'and carries its own task')
    }
    t.ok(new Set(events.map((event) => event.txid)).size < events.length, 'some creates were written together, in one transaction')
    const [refused] = await queryRows<{ n: number }>(app.db, sql`select count(*)::int as n from tasks where title in ('viewer writes', 'outsider writes', 'assigned to an outsider')`)
    t.equal(refused!.n, 0, 'the refused creates wrote nothing')
  })

  await t.test('batched creates by two members neither block nor fail a handover or a deletion of their project', async (t) => {
    for (let round = 0; round < 3; round++) {
      const shared = (await injectAs(app, owner!, { method: 'POST', url: '/v1/projects', payload: { name: `Contended ${round}` } })).json<{ id: string }>().id
      const added = await injectAs(app, owner!, { method: 'POST', url: `/v1/projects/${shared}/members`, payload: { username: editor!.username, role: 'editor' } })
      t.equal(added.statusCode, 201)
      /** Creates by the owner and the editor, more at once than the pool has connections, until `done`. */
      const createUntil = async (done: Promise<unknown>) => {
        let stopped = false
        void done.then(() => { stopped = true })
        const statuses: number[] = []
        await Promise.all(Array.from({ length: 24 }, async (_, worker) => {
          for (let i = 0; !stopped; i++) statuses.push((await create(worker % 2 === 0 ? owner! : editor!, { title: `Race ${i}`, project_id: shared })).statusCode)
        }))
        return statuses
      }
      const settle = async () => { await sleep(150) }
      const handover = settle().then(async () => await injectAs(app, owner!, { method: 'PATCH', url: `/v1/projects/${shared}/members/${editor!.id}`, payload: { role: 'owner' } }))
      const duringHandover = await createUntil(handover)
      t.equal((await handover).statusCode, 200, `round ${round}: the handover succeeds`, { body: (await handover).body })
      t.ok(duringHandover.every((status) => status === 201), `round ${round}: so does every create around it`)
      const deletion = settle().then(async () => await injectAs(app, editor!, { method: 'DELETE', url: `/v1/projects/${shared}` }))
      const duringDeletion = await createUntil(deletion)
      t.equal((await deletion).statusCode, 204, `round ${round}: the deletion succeeds`)
      t.ok(duringDeletion.every((status) => status === 201 || status === 404), `round ${round}: creates around it succeed or find no project (${[...new Set(duringDeletion)].join(', ')})`)
      const [left] = await queryRows<{ n: number }>(app.db, sql`select count(*)::int as n from tasks where project_id = ${shared}`)
      t.equal(left!.n, 0, 'nothing of the project is left')
    }
  })

  await t.test('a batch the database fails runs again one create at a time', async (t) => {
    // A trigger of the test's own makes the database refuse one task, as a constraint an operator added would.
    await app.database.db.execute(sql.raw(`create function refuse_boom() returns trigger language plpgsql as $$
      begin if new.title = 'boom' then raise exception 'no boom'; end if; return new; end $$`))
    await app.database.db.execute(sql.raw('create trigger refuse_boom before insert on tasks for each row execute function refuse_boom()'))
    t.teardown(async () => {
      await app.database.db.execute(sql.raw('drop trigger refuse_boom on tasks'))
      await app.database.db.execute(sql.raw('drop function refuse_boom()'))
    })
    // The refused create comes last, so that it waits behind the first ones on either database.
    const titles = Array.from({ length: 24 }, (_, i) => i === 23 ? 'boom' : `survivor ${i}`)
    const responses = await whileWritesWait(async () => await Promise.all(titles.map(async (title) => await create(owner!, { title }))))
    const created: string[] = []
    for (const [i, res] of responses.entries()) {
      if (titles[i] === 'boom') {
        t.equal(res.statusCode, 500, 'the refused create fails')
        t.match(res.headers['content-type'], /^application\/problem\+json/, 'as problem+json')
        continue
      }
      t.equal(res.statusCode, 201, `${titles[i]!}: created despite its batch`)
      t.equal(res.json<{ title: string }>().title, titles[i], 'its own task')
      created.push(res.json<{ id: string }>().id)
    }
    t.equal((await eventsOf(created)).length, created.length, 'each with its event, none twice')
    const [rows] = await queryRows<{ n: number, boom: number }>(app.db, sql`
      select count(*) filter (where title like 'survivor %')::int as n, count(*) filter (where title = 'boom')::int as boom from tasks`)
    t.same(rows, { n: 23, boom: 0 }, 'every other task written once, the refused one not at all')
  })
})
