/**
 * Sharing under concurrent requests, against a real listening server: a member removed while they
 * write, ownership handed over while the old owner edits, a project deleted while its members create
 * tasks, members added and removed while tasks are created and moved, a member removed and an
 * account deleted while tasks assigned to them are deleted and moved. In every case: no 5xx, no
 * orphaned row, no assignment of a non-member, no write of a removed member lands after the removal
 * is answered, and each member's rows of task_visibility are exactly the tasks of their projects.
 *
 * The races are real on PostgreSQL (TEST_DATABASE_URL), where requests run on a pool of connections;
 * the embedded database runs one statement at a time, so there they race between statements only.
 */
import tap from 'tap'
import { sql } from 'drizzle-orm'
import { queryRows } from '../../src/db/client.js'
import { assertVisibilityExact, build, createUser, databaseKind, type T, type TestUser } from '../helper.js'

interface Answer { status: number, body: string }

tap.test('sharing under concurrent writes', async (t) => {
  // The races send more writes in a minute than one user's rate limit allows.
  const app = await build(t, { RATE_LIMIT_MAX: '1000000' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  const base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
  const call = async (user: TestUser, method: string, path: string, body?: object): Promise<Answer> => {
    const res = await fetch(base + path, {
      method,
      headers: { authorization: `Bearer ${user.accessToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    return { status: res.status, body: await res.text() }
  }
  const idOf = (answer: Answer) => (JSON.parse(answer.body) as { id: string }).id
  const count = async (query: ReturnType<typeof sql>) => (await queryRows<{ n: number }>(app.db, query))[0]!.n

  /** Runs `write` in `workers` loops until `stop` resolves; returns every answer. */
  async function writeUntil (stop: Promise<unknown>, workers: number, write: (i: number) => Promise<Answer>): Promise<Answer[]> {
    let stopped = false
    void stop.then(() => { stopped = true })
    const answers: Answer[] = []
    await Promise.all(Array.from({ length: workers }, async (_, worker) => {
      for (let i = 0; !stopped; i++) answers.push(await write(worker * 1000 + i))
    }))
    return answers
  }

  /** Rows nothing should ever leave behind, and assignments of non-members. */
  async function assertConsistent (t: T): Promise<void> {
    t.equal(await count(sql`select count(*)::int as n from tasks t where not exists (select 1 from projects p where p.id = t.project_id)`), 0, 'no task without its project')
    t.equal(await count(sql`select count(*)::int as n from project_members m where not exists (select 1 from projects p where p.id = m.project_id)`), 0, 'no member without their project')
    t.equal(await count(sql`
      select count(*)::int as n from tasks t where t.assignee_id is not null
        and not exists (select 1 from project_members m where m.project_id = t.project_id and m.user_id = t.assignee_id)`), 0, 'no task assigned to a non-member')
    t.equal(await count(sql`select count(*)::int as n from projects p where (select count(*) from project_members m where m.project_id = p.id and m.role = 'owner') <> 1`), 0, 'every project has exactly one owner member')
    t.equal(await count(sql`select count(*)::int as n from projects p where not exists (select 1 from project_members m where m.project_id = p.id and m.user_id = p.owner_id and m.role = 'owner')`), 0, 'owner_id is the owner member')
    await assertVisibilityExact(t, app)
  }

  async function sharedProject (owner: TestUser, members: Array<[TestUser, string]>): Promise<string> {
    const project = idOf(await call(owner, 'POST', '/v1/projects', { name: 'Contended' }))
    for (const [member, role] of members) {
      const added = await call(owner, 'POST', `/v1/projects/${project}/members`, { username: member.username, role })
      if (added.status !== 201) throw new Error(added.body)
    }
    return project
  }

  const [owner, editor, other] = [await createUser(app, 'owner'), await createUser(app, 'editor'), await createUser(app, 'other')]

  await t.test('a member removed while they write: nothing of theirs lands after the removal, and they see nothing', async (t) => {
    for (let round = 0; round < 3; round++) {
      const project = await sharedProject(owner, [[editor, 'editor'], [other, 'editor']])
      const seed = idOf(await call(owner, 'POST', '/v1/tasks', { title: 'Seed', project_id: project }))
      let removed!: (at: { created: number, versions: number }) => void
      const removal = new Promise<{ created: number, versions: number }>((resolve) => { removed = resolve })
      const snapshot = async () => ({
        created: await count(sql`select count(*)::int as n from tasks where project_id = ${project} and created_by = ${editor.id}`),
        versions: await count(sql`select coalesce(sum(version), 0)::int as n from tasks where project_id = ${project}`),
      })
      const writes = writeUntil(removal, 6, async (i) => i % 2 === 0
        ? await call(editor, 'POST', '/v1/tasks', { title: `By the editor ${i}`, project_id: project })
        : await call(editor, 'PATCH', `/v1/tasks/${seed}`, { title: `Edited ${i}` }))
      const assignments = writeUntil(removal, 2, async () => await call(other, 'PATCH', `/v1/tasks/${seed}`, { assignee_id: editor.id }))
      await new Promise((resolve) => setTimeout(resolve, 150))
      const answer = await call(owner, 'DELETE', `/v1/projects/${project}/members/${editor.id}`)
      t.equal(answer.status, 204, 'the removal is answered')
      // Only the others write from here on: the owner's and the other member's writes are not counted.
      const atRemoval = await snapshot()
      removed(atRemoval)
      const statuses = [...await writes, ...await assignments].map((a) => a.status)
      t.ok(statuses.every((s) => [200, 201, 404, 422].includes(s)), `round ${round}: only 200, 201, 404 or 422 (${[...new Set(statuses)].join(', ')})`)
      t.ok(statuses.includes(404), 'some writes came after the removal and were refused')
      const after = await snapshot()
      t.equal(after.created, atRemoval.created, 'no task of theirs landed after the removal was answered')
      t.equal(after.versions, atRemoval.versions, 'no write landed after the removal was answered')
      t.equal((await call(editor, 'GET', `/v1/projects/${project}`)).status, 404)
      t.equal((await call(editor, 'GET', `/v1/tasks/${seed}`)).status, 404)
      t.same((JSON.parse((await call(editor, 'GET', `/v1/tasks?project_id=${project}`)).body) as { items: unknown[] }).items, [])
      t.equal(await count(sql`select count(*)::int as n from tasks where project_id = ${project} and assignee_id = ${editor.id}`), 0, 'their assignments are cleared, and none is made after')
      await assertConsistent(t)
    }
  })

  await t.test('members added and removed while tasks are created in and moved between projects: each lists exactly the tasks of their projects', async (t) => {
    const joiner = await createUser(app, 'joiner')
    for (let round = 0; round < 3; round++) {
      const [first, second] = [await sharedProject(owner, [[editor, 'editor']]), await sharedProject(owner, [[editor, 'editor']])]
      const moved = idOf(await call(owner, 'POST', '/v1/tasks', { title: 'Moved back and forth', project_id: first }))
      let done!: () => void
      const churn = new Promise<void>((resolve) => { done = resolve })
      const writes = writeUntil(churn, 6, async (i) => i % 3 === 2
        ? await call(editor, 'PATCH', `/v1/tasks/${moved}`, { project_id: i % 2 === 0 ? first : second })
        : await call(i % 2 === 0 ? editor : owner, 'POST', '/v1/tasks', { title: `Task ${i}`, project_id: i % 3 === 0 ? first : second }))
      const memberships: Answer[] = []
      for (let i = 0; i < 8; i++) {
        const project = i % 4 < 2 ? first : second
        memberships.push(i % 2 === 0
          ? await call(owner, 'POST', `/v1/projects/${project}/members`, { username: joiner.username, role: 'viewer' })
          : await call(owner, 'DELETE', `/v1/projects/${project}/members/${joiner.id}`))
      }
      await call(owner, 'POST', `/v1/projects/${second}/members`, { username: joiner.username, role: 'viewer' })
      done()
      const statuses = [...await writes, ...memberships].map((a) => a.status)
      t.ok(statuses.every((s) => [200, 201, 204].includes(s)), `round ${round}: every write succeeds (${[...new Set(statuses)].join(', ')})`)
      await assertConsistent(t)
      // What the joiner lists is what the second project holds, and nothing of the first.
      const listed: string[] = []
      for (let cursor: string | null = ''; cursor !== null;) {
        const page = JSON.parse((await call(joiner, 'GET', `/v1/tasks?limit=100${cursor === '' ? '' : `&cursor=${cursor}`}`)).body) as { items: Array<{ id: string, project_id: string }>, next_cursor: string | null }
        listed.push(...page.items.map((task) => `${task.project_id}/${task.id}`))
        cursor = page.next_cursor
      }
      const expected = await queryRows<{ key: string }>(app.db, sql`
        select t.project_id || '/' || t.id as key from tasks t join project_members m on m.project_id = t.project_id where m.user_id = ${joiner.id}`)
      t.same(listed.sort(), expected.map((row) => row.key).sort(), 'the joiner lists exactly the tasks of the projects they are in')
      t.notOk(listed.some((key) => key.startsWith(first)), 'nothing of the project they left')
      await call(owner, 'DELETE', `/v1/projects/${second}/members/${joiner.id}`)
    }
  })

  await t.test('a member removed while the tasks assigned to them are deleted and moved: no deadlock, none left assigned to them', async (t) => {
    for (let round = 0; round < 3; round++) {
      const [project, elsewhere] = [await sharedProject(owner, [[editor, 'editor'], [other, 'editor']]), await sharedProject(owner, [[editor, 'editor'], [other, 'editor']])]
      const assigned: string[] = []
      for (let i = 0; i < 24; i++) assigned.push(idOf(await call(owner, 'POST', '/v1/tasks', { title: `Assigned ${i}`, project_id: project, assignee_id: other.id })))
      const writes = Promise.all(assigned.map(async (id, i) => i % 2 === 0
        ? await call(editor, 'DELETE', `/v1/tasks/${id}`)
        : await call(editor, 'PATCH', `/v1/tasks/${id}`, { project_id: elsewhere })))
      const removal = await call(owner, 'DELETE', `/v1/projects/${project}/members/${other.id}`)
      const statuses = (await writes).map((a) => a.status)
      t.equal(removal.status, 204, 'the removal is answered')
      t.ok(statuses.every((s) => s === 200 || s === 204), `round ${round}: every delete and move succeeds (${[...new Set(statuses)].join(', ')})`)
      t.equal(await count(sql`select count(*)::int as n from tasks where project_id = ${project} and assignee_id = ${other.id}`), 0, 'nothing in the project is left assigned to them')
      await assertConsistent(t)
    }
  })

  await t.test('an account deleted while it is removed from a project, its tasks are deleted and others create: no deadlock', async (t) => {
    for (let round = 0; round < 3; round++) {
      const leaving = await createUser(app, 'leaving')
      const projects = [
        await sharedProject(owner, [[editor, 'editor'], [leaving, 'editor']]),
        await sharedProject(owner, [[editor, 'editor'], [leaving, 'editor']]),
        await sharedProject(owner, [[editor, 'editor'], [leaving, 'editor']]),
      ]
      const assigned: string[] = []
      for (const project of projects) {
        for (let i = 0; i < 6; i++) assigned.push(idOf(await call(owner, 'POST', '/v1/tasks', { title: `Theirs ${i}`, project_id: project, assignee_id: leaving.id })))
      }
      const writes = Promise.all([
        ...assigned.map(async (id) => await call(editor, 'DELETE', `/v1/tasks/${id}`)),
        ...projects.flatMap((project) => [1, 2, 3].map(async (i) => await call(editor, 'POST', '/v1/tasks', { title: `Meanwhile ${i}`, project_id: project }))),
        call(owner, 'DELETE', `/v1/projects/${projects[1]!}/members/${leaving.id}`),
      ])
      const deletion = await call(leaving, 'DELETE', '/v1/users/me')
      const statuses = (await writes).map((a) => a.status)
      t.equal(deletion.status, 204, `round ${round}: the account is deleted (${deletion.body.slice(0, 200)})`)
      t.ok(statuses.every((s) => [201, 204, 404].includes(s)), `round ${round}: only 201, 204 or 404 (${[...new Set(statuses)].join(', ')})`)
      t.equal(await count(sql`select count(*)::int as n from project_members where user_id = ${leaving.id}`), 0, 'a member nowhere')
      await assertConsistent(t)
    }
  })

  const concurrentSessions = { skip: databaseKind === 'postgres' ? false : 'needs concurrent sessions (TEST_DATABASE_URL)' }

  /** Resolves once a session of this database waits for a lock (or after 5 s). */
  async function untilOneWaitsForALock (): Promise<void> {
    for (let i = 0; i < 500 && await count(sql`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`) === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }

  /**
   * Runs `write` while another transaction holds `project` the way `mode` says, and returns, once
   * `write` waits, which of `tasks` it has already locked; then lets both finish.
   */
  async function lockedWhileWaiting (project: string, mode: 'for update' | 'for key share', tasks: string[], write: () => Promise<Answer>): Promise<{ locked: string[], answer: Answer }> {
    let release!: () => void
    const released = new Promise<void>((resolve) => { release = resolve })
    let holding!: () => void
    const held = new Promise<void>((resolve) => { holding = resolve })
    const holder = app.db.transaction(async (tx) => {
      await tx.execute(sql`select 1 from projects where id = ${project} ${sql.raw(mode)}`)
      holding()
      await released
    })
    await held
    const pending = write()
    await untilOneWaitsForALock()
    const free = await app.db.transaction(async (tx) => await queryRows<{ id: string }>(tx, sql`select id from tasks where id in (${sql.join(tasks.map((id) => sql`${id}::uuid`), sql`, `)}) for update skip locked`))
    release()
    await holder
    return { locked: tasks.filter((id) => !free.some((row) => row.id === id)), answer: await pending }
  }

  await t.test('a delete or a move takes its project before its task, as a change of membership does: the two cannot deadlock', concurrentSessions, async (t) => {
    const [project, elsewhere] = [await sharedProject(owner, [[editor, 'editor']]), await sharedProject(owner, [[editor, 'editor']])]
    const writes: Array<[string, (id: string) => Promise<Answer>]> = [
      ['a delete', async (id) => await call(editor, 'DELETE', `/v1/tasks/${id}`)],
      ['a move', async (id) => await call(editor, 'PATCH', `/v1/tasks/${id}`, { project_id: elsewhere })],
    ]
    for (const [what, write] of writes) {
      const task = idOf(await call(owner, 'POST', '/v1/tasks', { title: 'Contended', project_id: project }))
      // A member's removal holds the project FOR UPDATE (its task_visibility trigger), then locks the tasks assigned to them.
      const { locked, answer } = await lockedWhileWaiting(project, 'for update', [task], async () => await write(task))
      t.same(locked, [], `${what} waits for the project before it locks the task`)
      t.ok([200, 204].includes(answer.status), `${what} then succeeds (${answer.status})`)
    }
  })

  await t.test('an account\'s deletion takes its projects before the tasks assigned to it: it cannot deadlock with their writes', concurrentSessions, async (t) => {
    const leaving = await createUser(app, 'leaving')
    const [first, second] = [await sharedProject(owner, [[leaving, 'editor']]), await sharedProject(owner, [[leaving, 'editor']])]
    const assigned = [
      idOf(await call(owner, 'POST', '/v1/tasks', { title: 'Theirs', project_id: first, assignee_id: leaving.id })),
      idOf(await call(owner, 'POST', '/v1/tasks', { title: 'Theirs too', project_id: second, assignee_id: leaving.id })),
    ]
    // A task write in flight in one of them holds it FOR KEY SHARE.
    const { locked, answer } = await lockedWhileWaiting(second, 'for key share', assigned, async () => await call(leaving, 'DELETE', '/v1/users/me'))
    t.same(locked, [], 'the deletion waits for the project before it clears any assignment')
    t.equal(answer.status, 204)
    await assertConsistent(t)
  })

  await t.test('a task\'s update or delete that loses a deadlock runs again: the client sees it succeed', concurrentSessions, async (t) => {
    const project = await sharedProject(owner, [[editor, 'editor']])
    const writes: Array<[string, (id: string) => Promise<Answer>, number]> = [
      ['an update', async (id) => await call(editor, 'PATCH', `/v1/tasks/${id}`, { title: 'Written after the deadlock' }), 200],
      ['a delete', async (id) => await call(editor, 'DELETE', `/v1/tasks/${id}`), 204],
    ]
    for (const [what, write, status] of writes) {
      const task = idOf(await call(owner, 'POST', '/v1/tasks', { title: 'Contended', project_id: project }))
      let answer!: Promise<Answer>
      // Another transaction locks the task; the write locks the editor's membership (FOR SHARE) and
      // waits for the task; the other then changes that membership. PostgreSQL ends the write as the
      // deadlock's victim: the other side never looks for one (its deadlock_timeout is long).
      await app.db.transaction(async (tx) => {
        await tx.execute(sql`set local deadlock_timeout = '60s'`)
        await tx.execute(sql`select 1 from tasks where id = ${task} for update`)
        answer = write(task)
        await untilOneWaitsForALock()
        await tx.execute(sql`update project_members set version = version + 1 where project_id = ${project} and user_id = ${editor.id}`)
      })
      const { status: answered, body } = await answer
      t.equal(answered, status, `${what} lost the deadlock, ran again once the other committed, and succeeded (${body.slice(0, 200)})`)
    }
    t.equal(await count(sql`select count(*)::int as n from tasks where project_id = ${project}`), 1, 'the deleted task is gone')
    t.equal(await count(sql`select count(*)::int as n from tasks where project_id = ${project} and title = 'Written after the deadlock' and version = 2`), 1, 'the other is updated, once')
    t.equal(await count(sql`select count(*)::int as n from events where project_id = ${project} and type in ('task.updated', 'task.deleted')`), 2, 'one event each: the lost attempt left none')
    await assertConsistent(t)
  })

  await t.test('ownership handed over while the old owner edits', async (t) => {
    for (let round = 0; round < 3; round++) {
      const project = await sharedProject(owner, [[editor, 'editor']])
      const task = idOf(await call(owner, 'POST', '/v1/tasks', { title: 'Edited', project_id: project }))
      let handed!: () => void
      const handover = new Promise<void>((resolve) => { handed = resolve })
      const edits = writeUntil(handover, 4, async (i) => i % 3 === 0
        ? await call(owner, 'PATCH', `/v1/projects/${project}`, { name: `Renamed ${i}` })
        : await call(owner, 'PATCH', `/v1/tasks/${task}`, { title: `Edited ${i}`, assignee_id: i % 2 === 0 ? owner.id : editor.id }))
      await new Promise((resolve) => setTimeout(resolve, 100))
      const answer = await call(owner, 'PATCH', `/v1/projects/${project}/members/${editor.id}`, { role: 'owner' })
      t.equal(answer.status, 200)
      // Keep editing a little after the handover: the old owner is an editor now.
      await new Promise((resolve) => setTimeout(resolve, 100))
      handed()
      const statuses = (await edits).map((a) => a.status)
      t.ok(statuses.every((s) => s === 200), `round ${round}: every edit succeeds, before and after (${[...new Set(statuses)].join(', ')})`)
      const project_ = JSON.parse((await call(owner, 'GET', `/v1/projects/${project}`)).body) as { owner_id: string, role: string }
      t.match(project_, { owner_id: editor.id, role: 'editor' })
      t.equal((await call(owner, 'DELETE', `/v1/projects/${project}`)).status, 403, 'the old owner can no longer delete it')
      await assertConsistent(t)
    }
  })

  await t.test('a project deleted while its members create tasks in it', async (t) => {
    for (let round = 0; round < 3; round++) {
      const project = await sharedProject(owner, [[editor, 'editor'], [other, 'editor']])
      let deleted!: () => void
      const deletion = new Promise<void>((resolve) => { deleted = resolve })
      const creates = writeUntil(deletion, 6, async (i) => await call(i % 2 === 0 ? editor : other, 'POST', '/v1/tasks', { title: `Task ${i}`, project_id: project, assignee_id: owner.id }))
      await new Promise((resolve) => setTimeout(resolve, 150))
      t.equal((await call(owner, 'DELETE', `/v1/projects/${project}`)).status, 204)
      deleted()
      const answers = await creates
      const statuses = answers.map((a) => a.status)
      t.ok(statuses.every((s) => s === 201 || s === 404), `round ${round}: only 201 or 404 (${[...new Set(statuses)].join(', ')})`)
      t.ok(statuses.includes(201) && statuses.includes(404), 'the deletion came in the middle of the writes')
      t.ok(answers.filter((a) => a.status === 404).every((a) => a.body.includes('PROJECT_NOT_FOUND')), 'a late create finds no project')
      t.equal(await count(sql`select count(*)::int as n from tasks where project_id = ${project}`), 0, 'nothing of it is left')
      t.equal(await count(sql`select count(*)::int as n from project_members where project_id = ${project}`), 0)
      await assertConsistent(t)
    }
  })
})
