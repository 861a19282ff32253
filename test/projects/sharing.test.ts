/**
 * Projects and sharing through the API: the Inbox, the project and member operations, who may do
 * what by role, tasks in shared projects (listing across projects, assignees, moves), scopes, and
 * what deleting an account does to projects.
 */
import tap from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { assertProblem, assertVisibilityExact, build, createUser, injectAs, type TestUser } from '../helper.js'
import { createAdmin } from '../auth/support.js'

interface Project { id: string, name: string, description: string | null, is_inbox: boolean, owner_id: string, role: string, member_count: number, updated_at: string }
interface Member { user_id: string, username: string, role: string }
interface Task { id: string, project_id: string, assignee_id: string | null, created_by: string | null, title: string }

const json = <T>(res: LightMyRequestResponse): T => res.json<T>()

/** An owner's project shared with an editor and a viewer, and one outsider. */
async function sharedProject (app: FastifyInstance) {
  const [owner, editor, viewer, outsider] = [await createUser(app, 'owner'), await createUser(app, 'editor'), await createUser(app, 'viewer'), await createUser(app, 'outsider')]
  const created = await injectAs(app, owner, { method: 'POST', url: '/v1/projects', payload: { name: 'Kitchen' } })
  const project = json<Project>(created)
  for (const [user, role] of [[editor, 'editor'], [viewer, 'viewer']] as const) {
    const added = await injectAs(app, owner, { method: 'POST', url: `/v1/projects/${project.id}/members`, payload: { username: user.username, role } })
    if (added.statusCode !== 201) throw new Error(`adding ${role}: ${added.body}`)
  }
  return { owner, editor, viewer, outsider, project }
}

const list = async (app: FastifyInstance, user: TestUser, query = '') => json<{ items: Task[] }>(await injectAs(app, user, { method: 'GET', url: `/v1/tasks${query}` })).items

tap.test('every account has one Inbox that cannot be renamed, shared or deleted', async (t) => {
  const app = await build(t)
  const [user, other] = [await createUser(app), await createUser(app)]
  const projects = json<{ items: Project[], next_cursor: null }>(await injectAs(app, user, { method: 'GET', url: '/v1/projects' }))
  t.equal(projects.items.length, 1)
  const inbox = projects.items[0]!
  t.match(inbox, { name: 'Inbox', is_inbox: true, owner_id: user.id, role: 'owner', member_count: 1, description: null })
  const task = json<Task>(await injectAs(app, user, { method: 'POST', url: '/v1/tasks', payload: { title: 'Somewhere' } }))
  t.equal(task.project_id, inbox.id, 'a task without project_id goes to the Inbox')
  t.equal(task.created_by, user.id)
  t.equal(task.assignee_id, null)
  assertProblem(t, await injectAs(app, user, { method: 'DELETE', url: `/v1/projects/${inbox.id}` }), 409, 'INBOX_IMMUTABLE')
  assertProblem(t, await injectAs(app, user, { method: 'PATCH', url: `/v1/projects/${inbox.id}`, payload: { name: 'Outbox' } }), 409, 'INBOX_IMMUTABLE')
  assertProblem(t, await injectAs(app, user, { method: 'POST', url: `/v1/projects/${inbox.id}/members`, payload: { username: other.username, role: 'viewer' } }), 409, 'INBOX_IMMUTABLE')
  const described = await injectAs(app, user, { method: 'PATCH', url: `/v1/projects/${inbox.id}`, payload: { name: 'Inbox', description: 'Loose ends' } })
  t.equal(described.statusCode, 200, 'its description can change, and sending its own name is no rename')
  t.equal(json<Project>(described).description, 'Loose ends')
})

tap.test('project CRUD: Location, ETags, If-Match, If-None-Match, paging, idempotent create', async (t) => {
  const app = await build(t)
  const user = await createUser(app)
  const created = await injectAs(app, user, { method: 'POST', url: '/v1/projects', payload: { name: 'Garden', description: 'Spring' } })
  t.equal(created.statusCode, 201)
  const project = json<Project>(created)
  t.equal(created.headers.location, `/v1/projects/${project.id}`)
  t.equal(created.headers.etag, '"1"')
  t.match(project, { name: 'Garden', description: 'Spring', is_inbox: false, owner_id: user.id, role: 'owner', member_count: 1 })
  t.notOk('version' in project)

  const got = await injectAs(app, user, { method: 'GET', url: `/v1/projects/${project.id}` })
  t.equal(got.statusCode, 200)
  t.equal(got.headers.etag, '"1"')
  const notModified = await injectAs(app, user, { method: 'GET', url: `/v1/projects/${project.id}`, headers: { 'if-none-match': '"1"' } })
  t.equal(notModified.statusCode, 304)
  t.equal(notModified.body, '')

  assertProblem(t, await injectAs(app, user, { method: 'PATCH', url: `/v1/projects/${project.id}`, headers: { 'if-match': '"9"' }, payload: { name: 'No' } }), 412, 'PRECONDITION_FAILED')
  const renamed = await injectAs(app, user, { method: 'PATCH', url: `/v1/projects/${project.id}`, headers: { 'if-match': '"1"', 'content-type': 'application/merge-patch+json' }, payload: JSON.stringify({ name: 'Yard', description: null }) })
  t.equal(renamed.statusCode, 200)
  t.equal(renamed.headers.etag, '"2"')
  t.match(json<Project>(renamed), { name: 'Yard', description: null })
  assertProblem(t, await injectAs(app, user, { method: 'PATCH', url: `/v1/projects/${project.id}`, payload: { owner_id: user.id } }), 400, 'VALIDATION_FAILED')
  assertProblem(t, await injectAs(app, user, { method: 'POST', url: '/v1/projects', payload: { name: '' } }), 400, 'VALIDATION_FAILED')
  assertProblem(t, await injectAs(app, user, { method: 'POST', url: '/v1/projects', payload: { name: 'x'.repeat(101) } }), 400, 'VALIDATION_FAILED')
  assertProblem(t, await injectAs(app, user, { method: 'POST', url: '/v1/projects', payload: { name: 'x', description: 'd'.repeat(2001) } }), 400, 'VALIDATION_FAILED')

  const key = { 'idempotency-key': 'project-1' }
  const first = await injectAs(app, user, { method: 'POST', url: '/v1/projects', headers: key, payload: { name: 'Once' } })
  const again = await injectAs(app, user, { method: 'POST', url: '/v1/projects', headers: key, payload: { name: 'Once' } })
  t.equal(again.statusCode, 201)
  t.equal(again.headers['idempotent-replayed'], 'true')
  t.equal(again.body, first.body, 'the replay is the first response')
  assertProblem(t, await injectAs(app, user, { method: 'POST', url: '/v1/projects', headers: key, payload: { name: 'Twice' } }), 422, 'IDEMPOTENCY_KEY_REUSED')

  for (const name of ['b', 'a', 'C']) await injectAs(app, user, { method: 'POST', url: '/v1/projects', payload: { name } })
  const names: string[] = []
  let url: string | null = '/v1/projects?sort=name&limit=2'
  while (url !== null) {
    const page: LightMyRequestResponse = await injectAs(app, user, { method: 'GET', url })
    const body = json<{ items: Project[], next_cursor: string | null }>(page)
    names.push(...body.items.map((p) => p.name))
    url = body.next_cursor === null ? null : `/v1/projects?sort=name&limit=2&cursor=${body.next_cursor}`
    if (body.next_cursor !== null) t.match(page.headers.link, /rel="next"/)
  }
  t.same(names, ['C', 'Inbox', 'Once', 'Yard', 'a', 'b'], 'by code point, every project once')
  const newest = json<{ items: Project[] }>(await injectAs(app, user, { method: 'GET', url: '/v1/projects?sort=-created_at&limit=1' }))
  t.equal(newest.items[0]!.name, 'C')
  const cursor = json<{ next_cursor: string }>(await injectAs(app, user, { method: 'GET', url: '/v1/projects?sort=name&limit=1' })).next_cursor
  assertProblem(t, await injectAs(app, user, { method: 'GET', url: `/v1/projects?sort=-name&cursor=${cursor}` }), 400, 'INVALID_CURSOR')

  assertProblem(t, await injectAs(app, user, { method: 'DELETE', url: `/v1/projects/${project.id}`, headers: { 'if-match': '"1"' } }), 412, 'PRECONDITION_FAILED')
  t.equal((await injectAs(app, user, { method: 'DELETE', url: `/v1/projects/${project.id}`, headers: { 'if-match': '"2"' } })).statusCode, 204)
  assertProblem(t, await injectAs(app, user, { method: 'GET', url: `/v1/projects/${project.id}` }), 404, 'PROJECT_NOT_FOUND')
})

tap.test('non-members get 404 for the project and everything in it; viewers who write get 403', async (t) => {
  const app = await build(t)
  const { owner, editor, viewer, outsider, project } = await sharedProject(app)
  const task = json<Task>(await injectAs(app, owner, { method: 'POST', url: '/v1/tasks', payload: { title: 'Tiles', project_id: project.id } }))
  const outsiderInbox = json<{ items: Project[] }>(await injectAs(app, outsider, { method: 'GET', url: '/v1/projects' })).items[0]!
  const outsiderTask = json<Task>(await injectAs(app, outsider, { method: 'POST', url: '/v1/tasks', payload: { title: 'Mine' } }))

  const hidden: Array<[string, string, unknown?]> = [
    ['GET', `/v1/projects/${project.id}`],
    ['PATCH', `/v1/projects/${project.id}`, { name: 'Mine now' }],
    ['DELETE', `/v1/projects/${project.id}`],
    ['GET', `/v1/projects/${project.id}/members`],
    ['GET', `/v1/projects/${project.id}/members/${owner.id}`],
    ['POST', `/v1/projects/${project.id}/members`, { username: outsider.username, role: 'editor' }],
    ['PATCH', `/v1/projects/${project.id}/members/${outsider.id}`, { role: 'owner' }],
    ['DELETE', `/v1/projects/${project.id}/members/${editor.id}`],
  ]
  for (const [method, url, payload] of hidden) {
    assertProblem(t, await injectAs(app, outsider, { method: method as 'GET', url, ...(payload === undefined ? {} : { payload: payload as object }) }), 404, 'PROJECT_NOT_FOUND')
  }
  assertProblem(t, await injectAs(app, outsider, { method: 'GET', url: `/v1/tasks/${task.id}` }), 404, 'TASK_NOT_FOUND')
  assertProblem(t, await injectAs(app, outsider, { method: 'PATCH', url: `/v1/tasks/${task.id}`, payload: { title: 'x' } }), 404, 'TASK_NOT_FOUND')
  assertProblem(t, await injectAs(app, outsider, { method: 'DELETE', url: `/v1/tasks/${task.id}` }), 404, 'TASK_NOT_FOUND')
  assertProblem(t, await injectAs(app, outsider, { method: 'POST', url: '/v1/tasks', payload: { title: 'In', project_id: project.id } }), 404, 'PROJECT_NOT_FOUND')
  assertProblem(t, await injectAs(app, outsider, { method: 'PATCH', url: `/v1/tasks/${outsiderTask.id}`, payload: { project_id: project.id } }), 404, 'PROJECT_NOT_FOUND')
  assertProblem(t, await injectAs(app, owner, { method: 'PATCH', url: `/v1/tasks/${task.id}`, payload: { project_id: outsiderInbox.id } }), 404, 'PROJECT_NOT_FOUND')
  t.same(await list(app, outsider, `?project_id=${project.id}`), [], 'filtering by a project you are not in lists nothing')
  t.notOk((await list(app, outsider)).some((item) => item.id === task.id))

  // The viewer reads everything and writes nothing.
  t.equal((await injectAs(app, viewer, { method: 'GET', url: `/v1/tasks/${task.id}` })).statusCode, 200)
  t.ok((await list(app, viewer)).some((item) => item.id === task.id))
  t.equal((await injectAs(app, viewer, { method: 'GET', url: `/v1/projects/${project.id}/members` })).statusCode, 200)
  assertProblem(t, await injectAs(app, viewer, { method: 'POST', url: '/v1/tasks', payload: { title: 'x', project_id: project.id } }), 403, 'ROLE_FORBIDDEN')
  assertProblem(t, await injectAs(app, viewer, { method: 'PATCH', url: `/v1/tasks/${task.id}`, payload: { completed: true } }), 403, 'ROLE_FORBIDDEN')
  assertProblem(t, await injectAs(app, viewer, { method: 'PUT', url: `/v1/tasks/${task.id}`, payload: { title: 'x' } }), 403, 'ROLE_FORBIDDEN')
  assertProblem(t, await injectAs(app, viewer, { method: 'DELETE', url: `/v1/tasks/${task.id}` }), 403, 'ROLE_FORBIDDEN')
  assertProblem(t, await injectAs(app, viewer, { method: 'PATCH', url: `/v1/projects/${project.id}`, payload: { name: 'x' } }), 403, 'ROLE_FORBIDDEN')
  const viewerTask = json<Task>(await injectAs(app, viewer, { method: 'POST', url: '/v1/tasks', payload: { title: 'Mine' } }))
  assertProblem(t, await injectAs(app, viewer, { method: 'PATCH', url: `/v1/tasks/${viewerTask.id}`, payload: { project_id: project.id } }), 403, 'ROLE_FORBIDDEN')

  // The editor writes tasks and renames the project, but neither shares nor deletes it.
  t.equal((await injectAs(app, editor, { method: 'PATCH', url: `/v1/tasks/${task.id}`, payload: { completed: true } })).statusCode, 200)
  t.equal((await injectAs(app, editor, { method: 'PATCH', url: `/v1/projects/${project.id}`, payload: { name: 'Kitchen 2' } })).statusCode, 200)
  assertProblem(t, await injectAs(app, editor, { method: 'DELETE', url: `/v1/projects/${project.id}` }), 403, 'ROLE_FORBIDDEN')
  assertProblem(t, await injectAs(app, editor, { method: 'POST', url: `/v1/projects/${project.id}/members`, payload: { username: outsider.username, role: 'viewer' } }), 403, 'ROLE_FORBIDDEN')
  assertProblem(t, await injectAs(app, editor, { method: 'DELETE', url: `/v1/projects/${project.id}/members/${viewer.id}` }), 403, 'ROLE_FORBIDDEN')
  assertProblem(t, await injectAs(app, editor, { method: 'PATCH', url: `/v1/projects/${project.id}/members/${viewer.id}`, payload: { role: 'editor' } }), 403, 'ROLE_FORBIDDEN')
})

tap.test('members: add, change role, hand over ownership, remove, leave', async (t) => {
  const app = await build(t)
  const { owner, editor, viewer, outsider, project } = await sharedProject(app)
  const members = json<{ items: Member[] }>(await injectAs(app, viewer, { method: 'GET', url: `/v1/projects/${project.id}/members` })).items
  t.same(members.map((m) => [m.username, m.role]), [[owner.username, 'owner'], [editor.username, 'editor'], [viewer.username, 'viewer']], 'in the order they joined')
  t.equal(json<Project>(await injectAs(app, viewer, { method: 'GET', url: `/v1/projects/${project.id}` })).member_count, 3)
  t.equal(json<Project>(await injectAs(app, viewer, { method: 'GET', url: `/v1/projects/${project.id}` })).role, 'viewer')

  assertProblem(t, await injectAs(app, owner, { method: 'POST', url: `/v1/projects/${project.id}/members`, payload: { username: 'nobody-at-all', role: 'viewer' } }), 422, 'UNKNOWN_USERNAME')
  assertProblem(t, await injectAs(app, owner, { method: 'POST', url: `/v1/projects/${project.id}/members`, payload: { username: editor.username.toUpperCase(), role: 'viewer' } }), 409, 'ALREADY_MEMBER')
  assertProblem(t, await injectAs(app, owner, { method: 'POST', url: `/v1/projects/${project.id}/members`, payload: { username: outsider.username, role: 'owner' } }), 400, 'VALIDATION_FAILED')
  const added = await injectAs(app, owner, { method: 'POST', url: `/v1/projects/${project.id}/members`, payload: { username: outsider.username, role: 'viewer' } })
  t.equal(added.statusCode, 201)
  t.equal(added.headers.location, `/v1/projects/${project.id}/members/${outsider.id}`)
  t.equal(added.headers.etag, '"1"')
  t.match(json<Member>(added), { user_id: outsider.id, username: outsider.username, role: 'viewer' })

  assertProblem(t, await injectAs(app, owner, { method: 'PATCH', url: `/v1/projects/${project.id}/members/${outsider.id}`, headers: { 'if-match': '"5"' }, payload: { role: 'editor' } }), 412, 'PRECONDITION_FAILED')
  const promoted = await injectAs(app, owner, { method: 'PATCH', url: `/v1/projects/${project.id}/members/${outsider.id}`, headers: { 'if-match': '"1"' }, payload: { role: 'editor' } })
  t.equal(promoted.statusCode, 200)
  t.equal(promoted.headers.etag, '"2"')
  assertProblem(t, await injectAs(app, owner, { method: 'PATCH', url: `/v1/projects/${project.id}/members/${owner.id}`, payload: { role: 'editor' } }), 409, 'OWNER_REQUIRED')
  assertProblem(t, await injectAs(app, owner, { method: 'DELETE', url: `/v1/projects/${project.id}/members/${owner.id}` }), 409, 'OWNER_CANNOT_LEAVE')
  assertProblem(t, await injectAs(app, owner, { method: 'PATCH', url: `/v1/projects/${project.id}/members/${owner.id.replace(/.$/, (c) => c === '0' ? '1' : '0')}`, payload: { role: 'viewer' } }), 404, 'MEMBER_NOT_FOUND')

  // Handing over: the editor becomes the owner, the owner an editor.
  const handed = await injectAs(app, owner, { method: 'PATCH', url: `/v1/projects/${project.id}/members/${editor.id}`, payload: { role: 'owner' } })
  t.equal(handed.statusCode, 200)
  t.equal(json<Member>(handed).role, 'owner')
  t.match(json<Project>(await injectAs(app, owner, { method: 'GET', url: `/v1/projects/${project.id}` })), { owner_id: editor.id, role: 'editor' })
  assertProblem(t, await injectAs(app, owner, { method: 'DELETE', url: `/v1/projects/${project.id}` }), 403, 'ROLE_FORBIDDEN')

  // Leaving, and being removed: access ends at once, and assignments in the project are cleared.
  const assigned = json<Task>(await injectAs(app, owner, { method: 'POST', url: '/v1/tasks', payload: { title: 'For the viewer', project_id: project.id, assignee_id: viewer.id } }))
  t.equal(assigned.assignee_id, viewer.id, 'a viewer can be assigned')
  t.equal((await injectAs(app, editor, { method: 'DELETE', url: `/v1/projects/${project.id}/members/${viewer.id}` })).statusCode, 204)
  assertProblem(t, await injectAs(app, viewer, { method: 'GET', url: `/v1/projects/${project.id}` }), 404, 'PROJECT_NOT_FOUND')
  assertProblem(t, await injectAs(app, viewer, { method: 'GET', url: `/v1/tasks/${assigned.id}` }), 404, 'TASK_NOT_FOUND')
  const after = await injectAs(app, owner, { method: 'GET', url: `/v1/tasks/${assigned.id}` })
  t.equal(json<Task>(after).assignee_id, null, 'the removed member\'s assignment is cleared')
  t.equal(after.headers.etag, '"2"', 'which is a change of the task')
  t.equal((await injectAs(app, outsider, { method: 'DELETE', url: `/v1/projects/${project.id}/members/${outsider.id}` })).statusCode, 204, 'a member leaves')
  assertProblem(t, await injectAs(app, outsider, { method: 'GET', url: `/v1/projects/${project.id}/members` }), 404, 'PROJECT_NOT_FOUND')
})

tap.test('tasks across projects: one list, project and assignee filters, assignees, moves', async (t) => {
  const app = await build(t)
  const { owner, editor, viewer, project } = await sharedProject(app)
  const mine = json<Task>(await injectAs(app, editor, { method: 'POST', url: '/v1/tasks', payload: { title: 'Inbox task' } }))
  const shared = json<Task>(await injectAs(app, editor, { method: 'POST', url: '/v1/tasks', payload: { title: 'Shared task', project_id: project.id, assignee_id: editor.id } }))
  const forViewer = json<Task>(await injectAs(app, owner, { method: 'POST', url: '/v1/tasks', payload: { title: 'Viewer\'s', project_id: project.id, assignee_id: viewer.id } }))
  const unassigned = json<Task>(await injectAs(app, owner, { method: 'POST', url: '/v1/tasks', payload: { title: 'Nobody\'s', project_id: project.id } }))
  t.equal(shared.created_by, editor.id)

  const ids = (tasks: Task[]) => tasks.map((task) => task.id).sort()
  t.same(ids(await list(app, editor)), ids([mine, shared, forViewer, unassigned]), 'the Inbox and the shared project, in one list')
  t.same((await list(app, editor, '?sort=title')).map((task) => task.title), ['Inbox task', 'Nobody\'s', 'Shared task', 'Viewer\'s'])
  t.same(ids(await list(app, editor, `?project_id=${project.id}`)), ids([shared, forViewer, unassigned]))
  t.same(ids(await list(app, editor, `?project_id=${project.id.toUpperCase()}`)), ids([shared, forViewer, unassigned]), 'ids in any case')
  t.same(ids(await list(app, editor, '?assignee_id=me')), ids([shared]))
  t.same(ids(await list(app, editor, `?assignee_id=${viewer.id}`)), ids([forViewer]))
  t.same(ids(await list(app, editor, '?assignee_id=none')), ids([mine, unassigned]))
  t.same(ids(await list(app, viewer, '?assignee_id=me')), ids([forViewer]), 'assigned to me, from the viewer\'s side')
  assertProblem(t, await injectAs(app, editor, { method: 'GET', url: '/v1/tasks?assignee_id=someone' }), 400, 'VALIDATION_FAILED')
  assertProblem(t, await injectAs(app, editor, { method: 'GET', url: '/v1/tasks?project_id=nope' }), 400, 'VALIDATION_FAILED')

  // Paging across projects: every task once, in order, whatever the page size.
  for (let i = 0; i < 7; i++) await injectAs(app, i % 2 === 0 ? owner : editor, { method: 'POST', url: '/v1/tasks', payload: { title: `Bulk ${i}`, ...(i % 3 === 0 ? {} : { project_id: project.id }) } })
  const everything = await list(app, editor, '?limit=100')
  let url: string | null = '/v1/tasks?limit=3'
  const paged: Task[] = []
  while (url !== null) {
    const body: { items: Task[], next_cursor: string | null } = json(await injectAs(app, editor, { method: 'GET', url }))
    paged.push(...body.items)
    url = body.next_cursor === null ? null : `/v1/tasks?limit=3&cursor=${body.next_cursor}`
  }
  t.same(paged.map((task) => task.id), everything.map((task) => task.id), 'three at a time, the same tasks in the same order')

  // Assignees must be members of the task's project.
  const outsider = await createUser(app, 'stranger')
  assertProblem(t, await injectAs(app, owner, { method: 'POST', url: '/v1/tasks', payload: { title: 'x', project_id: project.id, assignee_id: outsider.id } }), 422, 'ASSIGNEE_NOT_MEMBER')
  assertProblem(t, await injectAs(app, owner, { method: 'PATCH', url: `/v1/tasks/${unassigned.id}`, payload: { assignee_id: outsider.id } }), 422, 'ASSIGNEE_NOT_MEMBER')
  t.equal(json<Task>(await injectAs(app, owner, { method: 'PATCH', url: `/v1/tasks/${unassigned.id}`, payload: { assignee_id: editor.id } })).assignee_id, editor.id)
  t.equal(json<Task>(await injectAs(app, owner, { method: 'PATCH', url: `/v1/tasks/${unassigned.id}`, payload: { assignee_id: null } })).assignee_id, null)
  const replaced = json<Task>(await injectAs(app, owner, { method: 'PUT', url: `/v1/tasks/${shared.id}`, payload: { title: 'Replaced' } }))
  t.match(replaced, { project_id: project.id, assignee_id: editor.id }, 'a PUT without project_id and assignee_id keeps both')

  // Moves: owner or editor of both projects; an assignee who is not a member of the target is cleared.
  const editorInbox = mine.project_id
  const moved = json<Task>(await injectAs(app, editor, { method: 'PATCH', url: `/v1/tasks/${forViewer.id}`, payload: { project_id: editorInbox } }))
  t.match(moved, { project_id: editorInbox, assignee_id: null }, 'moved into the editor\'s Inbox, the viewer unassigned')
  assertProblem(t, await injectAs(app, viewer, { method: 'GET', url: `/v1/tasks/${forViewer.id}` }), 404, 'TASK_NOT_FOUND')
  const back = json<Task>(await injectAs(app, editor, { method: 'PATCH', url: `/v1/tasks/${mine.id}`, payload: { project_id: project.id, assignee_id: editor.id } }))
  t.match(back, { project_id: project.id, assignee_id: editor.id })
  const keeps = json<Task>(await injectAs(app, editor, { method: 'PATCH', url: `/v1/tasks/${mine.id}`, payload: { project_id: editorInbox } }))
  t.equal(keeps.assignee_id, editor.id, 'an assignee who is a member of the target stays')
})

tap.test('scopes still bound credentials: a tasks:read key reads shared projects but never writes them', async (t) => {
  const app = await build(t)
  const { owner, editor, project } = await sharedProject(app)
  const task = json<Task>(await injectAs(app, owner, { method: 'POST', url: '/v1/tasks', payload: { title: 'Shared', project_id: project.id } }))
  const key = json<{ key: string }>(await injectAs(app, editor, { method: 'POST', url: '/v1/api-keys', payload: { name: 'reader', scopes: ['tasks:read'] } })).key
  const asKey = { 'x-api-key': key }
  t.equal((await app.inject({ method: 'GET', url: `/v1/tasks/${task.id}`, headers: asKey })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: `/v1/projects/${project.id}/members`, headers: asKey })).statusCode, 200)
  assertProblem(t, await app.inject({ method: 'PATCH', url: `/v1/tasks/${task.id}`, headers: asKey, payload: { completed: true } }), 403, 'INSUFFICIENT_SCOPE')
  assertProblem(t, await app.inject({ method: 'POST', url: '/v1/projects', headers: asKey, payload: { name: 'x' } }), 403, 'INSUFFICIENT_SCOPE')
  assertProblem(t, await app.inject({ method: 'PATCH', url: `/v1/projects/${project.id}`, headers: asKey, payload: { name: 'x' } }), 403, 'INSUFFICIENT_SCOPE')
})

tap.test('deleting an account deletes the projects it owns and removes it from the others', async (t) => {
  const app = await build(t)
  const { owner, editor, viewer, project } = await sharedProject(app)
  const theirs = json<Project>(await injectAs(app, editor, { method: 'POST', url: '/v1/projects', payload: { name: 'Editor\'s own' } }))
  await injectAs(app, editor, { method: 'POST', url: `/v1/projects/${theirs.id}/members`, payload: { username: viewer.username, role: 'editor' } })
  const ownTask = json<Task>(await injectAs(app, editor, { method: 'POST', url: '/v1/tasks', payload: { title: 'Goes', project_id: theirs.id } }))
  const sharedTask = json<Task>(await injectAs(app, editor, { method: 'POST', url: '/v1/tasks', payload: { title: 'Stays', project_id: project.id, assignee_id: editor.id } }))

  t.equal((await injectAs(app, editor, { method: 'DELETE', url: '/v1/users/me' })).statusCode, 204)
  assertProblem(t, await injectAs(app, viewer, { method: 'GET', url: `/v1/projects/${theirs.id}` }), 404, 'PROJECT_NOT_FOUND')
  assertProblem(t, await injectAs(app, viewer, { method: 'GET', url: `/v1/tasks/${ownTask.id}` }), 404, 'TASK_NOT_FOUND')
  const stays = json<Task>(await injectAs(app, owner, { method: 'GET', url: `/v1/tasks/${sharedTask.id}` }))
  t.match(stays, { title: 'Stays', created_by: null, assignee_id: null }, 'their task in another\'s project stays, unattributed')
  const members = json<{ items: Member[] }>(await injectAs(app, owner, { method: 'GET', url: `/v1/projects/${project.id}/members` })).items
  t.notOk(members.some((m) => m.user_id === editor.id))
  t.equal(json<Project>(await injectAs(app, owner, { method: 'GET', url: `/v1/projects/${project.id}` })).member_count, 2)
  t.same(json<{ items: Task[] }>(await injectAs(app, viewer, { method: 'GET', url: '/v1/tasks' })).items.map((task) => task.title), ['Stays'], 'the viewer lists what is left')
  await assertVisibilityExact(t, app)
})

tap.test('disabling an account hides nothing from the other members; an admin\'s deletion does what self-deletion does', async (t) => {
  const app = await build(t)
  const admin = await createAdmin(app)
  const { owner, editor, viewer, project } = await sharedProject(app)
  const byEditor = json<Task>(await injectAs(app, editor, { method: 'POST', url: '/v1/tasks', payload: { title: 'By the editor', project_id: project.id, assignee_id: editor.id } }))
  t.equal((await injectAs(app, admin, { method: 'PATCH', url: `/v1/users/${editor.id}`, payload: { disabled: true } })).statusCode, 200)
  t.match(json<Task>(await injectAs(app, viewer, { method: 'GET', url: `/v1/tasks/${byEditor.id}` })), { created_by: editor.id, assignee_id: editor.id }, 'their task and assignment stay')
  t.ok(json<{ items: Member[] }>(await injectAs(app, viewer, { method: 'GET', url: `/v1/projects/${project.id}/members` })).items.some((m) => m.user_id === editor.id), 'and so does their membership')

  const theirs = json<Project>(await injectAs(app, owner, { method: 'POST', url: '/v1/projects', payload: { name: 'Owner\'s other' } }))
  await injectAs(app, owner, { method: 'POST', url: `/v1/projects/${theirs.id}/members`, payload: { username: viewer.username, role: 'viewer' } })
  t.equal((await injectAs(app, admin, { method: 'DELETE', url: `/v1/users/${owner.id}` })).statusCode, 204)
  assertProblem(t, await injectAs(app, viewer, { method: 'GET', url: `/v1/projects/${project.id}` }), 404, 'PROJECT_NOT_FOUND')
  assertProblem(t, await injectAs(app, viewer, { method: 'GET', url: `/v1/projects/${theirs.id}` }), 404, 'PROJECT_NOT_FOUND')
  assertProblem(t, await injectAs(app, viewer, { method: 'GET', url: `/v1/tasks/${byEditor.id}` }), 404, 'TASK_NOT_FOUND')
  t.same(json<{ items: Project[] }>(await injectAs(app, viewer, { method: 'GET', url: '/v1/projects' })).items.map((p) => p.name), ['Inbox'], 'the owner\'s projects went with the owner')
  t.same(json<{ items: Task[] }>(await injectAs(app, viewer, { method: 'GET', url: '/v1/tasks' })).items, [], 'and the viewer lists none of their tasks')
  await assertVisibilityExact(t, app)
})

tap.test('a page of members links to the next one at the project\'s own path', async (t) => {
  const app = await build(t)
  const { owner, project } = await sharedProject(app)
  const first = await injectAs(app, owner, { method: 'GET', url: `/v1/projects/${project.id}/members?limit=1` })
  const link = /^<([^>]+)>; rel="next"$/.exec(String(first.headers.link))?.[1]
  t.match(link, new RegExp(`^/v1/projects/${project.id}/members\\?limit=1&cursor=`))
  const next = await injectAs(app, owner, { method: 'GET', url: link! })
  t.equal(next.statusCode, 200)
  t.equal(json<{ items: unknown[] }>(next).items.length, 1)
  t.not(json<{ items: Array<{ user_id: string }> }>(next).items[0]!.user_id, json<{ items: Array<{ user_id: string }> }>(first).items[0]!.user_id)
})

tap.test('a change of membership moves the project\'s ETag: a member added, a role changed, ownership handed over, a member removed', async (t) => {
  const app = await build(t)
  const { owner, editor, viewer, outsider, project } = await sharedProject(app)
  const read = async () => await injectAs(app, owner, { method: 'GET', url: `/v1/projects/${project.id}` })
  const changes: Array<[string, () => Promise<LightMyRequestResponse>]> = [
    ['a member added', async () => await injectAs(app, owner, { method: 'POST', url: `/v1/projects/${project.id}/members`, payload: { username: outsider.username, role: 'viewer' } })],
    ['a role changed', async () => await injectAs(app, owner, { method: 'PATCH', url: `/v1/projects/${project.id}/members/${viewer.id}`, payload: { role: 'editor' } })],
    ['a member removed', async () => await injectAs(app, owner, { method: 'DELETE', url: `/v1/projects/${project.id}/members/${outsider.id}` })],
    ['ownership handed over', async () => await injectAs(app, owner, { method: 'PATCH', url: `/v1/projects/${project.id}/members/${editor.id}`, payload: { role: 'owner' } })],
  ]
  for (const [change, make] of changes) {
    const before = await read()
    t.ok([200, 201, 204].includes((await make()).statusCode), change)
    const after = await read()
    t.not(after.headers.etag, before.headers.etag, `${change}: the ETag moved`)
    t.ok(json<Project>(after).updated_at > json<Project>(before).updated_at, `${change}: updated_at moved`)
    const revalidated = await injectAs(app, owner, { method: 'GET', url: `/v1/projects/${project.id}`, headers: { 'if-none-match': String(before.headers.etag) } })
    t.equal(revalidated.statusCode, 200, `${change}: the old tag no longer revalidates`)
  }
})
