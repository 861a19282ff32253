/**
 * The project pages: projects (create, rename, delete), members (add, change role, hand over,
 * remove, leave, and the repository's refusals as form errors), the task list's project switcher and
 * "assigned to me", the task form's project and assignee choices, and who sees what by role.
 */
import type { FastifyInstance } from 'fastify'
import tap from 'tap'
import { buildWeb, createTask, type PageUser, signUp } from './support.js'

const titlesOf = (html: string) => [...html.matchAll(/<h2 class="task-title"><a href="[^"]+">([^<]+)<\/a>/g)].map((m) => m[1])

/** The options of a select: value, label, and whether it is the selected one. */
function optionsOf (html: string, id: string): Array<{ value: string, label: string, selected: boolean }> {
  const select = new RegExp(`<select id="${id}"[^>]*>([\\s\\S]*?)</select>`).exec(html)?.[1] ?? ''
  return [...select.matchAll(/<option value="([^"]*)"( selected)?>([^<]*)<\/option>/g)].map((m) => ({ value: m[1]!, label: m[3]!, selected: m[2] !== undefined }))
}

const labelsOf = (html: string, id: string) => optionsOf(html, id).map((option) => option.label)
const selectedOf = (html: string, id: string) => optionsOf(html, id).find((option) => option.selected)?.label

async function userId (app: FastifyInstance, user: PageUser): Promise<string> {
  return (await app.usersRepository.findByUsername(user.username))!.id
}

/** Creates a project through the form and answers its id. */
async function createProject (user: PageUser, name: string): Promise<string> {
  await user.client.get('/app/projects')
  const res = await user.client.post('/app/projects', { name })
  const id = /^\/app\/projects\/([0-9a-f-]{36})$/.exec(res.headers.location as string)?.[1]
  if (res.statusCode !== 303 || id === undefined) throw new Error(`create project failed: ${res.statusCode} ${res.body.slice(0, 500)}`)
  return id
}

async function addMember (owner: PageUser, projectId: string, member: PageUser, role: 'editor' | 'viewer'): Promise<void> {
  await owner.client.get(`/app/projects/${projectId}/members`)
  const res = await owner.client.post(`/app/projects/${projectId}/members`, { username: member.username, role })
  if (res.statusCode !== 303) throw new Error(`add member failed: ${res.statusCode} ${res.body.slice(0, 500)}`)
}

async function inboxId (app: FastifyInstance, user: PageUser): Promise<string> {
  const { items } = await app.projectsRepository.list(await userId(app, user), { filters: {}, sort: 'name', limit: 100, after: undefined })
  return items.find((project) => project.is_inbox)!.id
}

tap.test('projects: listed with your role and members, created, renamed, described and deleted with their tasks', async (t) => {
  const app = await buildWeb(t)
  const user = await signUp(app)
  const { client } = user

  const empty = await client.get('/app/projects')
  t.equal(empty.statusCode, 200)
  t.match(empty.body, /<a href="\/app\/projects\/[0-9a-f-]{36}">Inbox<\/a> <span class="badge inbox">new tasks go here<\/span>/, 'the Inbox, marked')
  t.match(empty.body, /<td data-label="Your role">Owner<\/td>/)
  t.match(empty.body, /<a href="\/app\/projects" aria-current="page">Projects<\/a>/)

  const bad = await client.post('/app/projects', { name: '   ', description: 'd'.repeat(2001) })
  t.equal(bad.statusCode, 400)
  for (const name of ['name', 'description']) t.match(bad.body, new RegExp(`id="${name}-error"`), `${name} is flagged`)

  const created = await client.post('/app/projects', { name: 'Kitchen', description: 'Tiles\r\nPaint' })
  t.equal(created.statusCode, 303)
  const id = /^\/app\/projects\/([0-9a-f-]{36})$/.exec(created.headers.location as string)?.[1]
  t.ok(id, 'to the new project\'s page')
  const page = await client.get(`/app/projects/${id!}`)
  t.match(page.body, /Project “Kitchen” created\./)
  t.match(page.body, /<h1>Kitchen<\/h1>/)
  t.match(page.body, /<dt>Your role<\/dt><dd>Owner<\/dd>/)
  t.match(page.body, new RegExp(`href="/app/tasks\\?project_id=${id!}">Its tasks`))
  t.match(page.body, new RegExp(`href="/app/projects/${id!}/delete"`), 'the owner may delete it')
  const listed = await client.get('/app/projects')
  t.match(listed.body, new RegExp(`<a href="/app/projects/${id!}">Kitchen</a></th>\\s*<td data-label="Your role">Owner</td>\\s*<td data-label="Members"><a [^>]+>1<`))

  const renamed = await client.post(`/app/projects/${id!}`, { name: 'Kitchen and bath', description: '', version: '1' })
  t.equal(renamed.statusCode, 303)
  const after = await client.get(`/app/projects/${id!}`)
  t.match(after.body, /Project “Kitchen and bath” saved\./)
  t.notMatch(after.body, /class="project-description"/, 'the description is cleared')
  const stale = await client.post(`/app/projects/${id!}`, { name: 'Stale', description: '', version: '1' })
  t.equal(stale.statusCode, 409, 'an edit over a newer version is not applied silently')
  t.match(stale.body, /changed elsewhere since you opened it/)
  t.match(stale.body, /value="Stale"/)
  const invalid = await client.post(`/app/projects/${id!}`, { name: '', version: '2' })
  t.equal(invalid.statusCode, 400)
  t.match(invalid.body, /id="name-error"/)

  const inbox = await inboxId(app, user)
  const inboxPage = await client.get(`/app/projects/${inbox}`)
  t.notMatch(inboxPage.body, /id="f-name"/, 'the Inbox has no name to change')
  t.notMatch(inboxPage.body, /\/delete"/, 'nor a delete link')
  const described = await client.post(`/app/projects/${inbox}`, { name: 'Outbox', description: 'Loose ends', version: '1' })
  t.equal(described.statusCode, 303, 'its description changes; a name sent with it is ignored')
  t.match((await client.get(`/app/projects/${inbox}`)).body, /<h1>Inbox<\/h1>\s*<p class="project-description">Loose ends<\/p>/)
  const inboxDelete = await client.get(`/app/projects/${inbox}/delete`)
  t.equal(inboxDelete.statusCode, 409)
  t.match(inboxDelete.body, /The Inbox cannot be deleted/)

  await createTask(user, { title: 'Grout', project_id: id! })
  const confirm = await client.get(`/app/projects/${id!}/delete`)
  t.equal(confirm.statusCode, 200, 'deleting asks first')
  t.match(confirm.body, /<h1>Delete “Kitchen and bath”\?<\/h1>/)
  t.match(confirm.body, /Its tasks are deleted with it, for you\./)
  const deleted = await client.post(`/app/projects/${id!}/delete`)
  t.equal(deleted.statusCode, 303)
  t.equal(deleted.headers.location, '/app/projects')
  t.match((await client.get('/app/projects')).body, /Project “Kitchen and bath” and its tasks deleted\./)
  t.equal((await client.get(`/app/projects/${id!}`)).statusCode, 404)
  t.same(titlesOf((await client.get('/app/tasks')).body), [], 'its tasks went with it')
})

tap.test('members: add, change a role, hand over, remove and leave; refusals are form errors', async (t) => {
  const app = await buildWeb(t)
  const [owner, bob, carol] = [await signUp(app, 'owner'), await signUp(app, 'bob'), await signUp(app, 'carol')]
  const id = await createProject(owner, 'Kitchen')
  const [bobId, carolId, ownerId] = [await userId(app, bob), await userId(app, carol), await userId(app, owner)]
  const members = `/app/projects/${id}/members`
  const { client } = owner

  const page = await client.get(members)
  t.equal(page.statusCode, 200)
  t.match(page.body, /<h1>Members of “Kitchen”<\/h1>/)
  t.match(page.body, new RegExp(`${owner.username} <span class="badge">You</span></th>\\s*<td data-label="Role">Owner</td>`))
  t.same(labelsOf(page.body, 'f-role'), ['Editor: reads and writes its tasks', 'Viewer: only reads'])

  const unknown = await client.post(members, { username: 'nobody-by-this-name', role: 'editor' })
  t.equal(unknown.statusCode, 422, 'an unknown username')
  t.match(unknown.body, /<p class="field-error" id="username-error"><span class="visually-hidden">Error:<\/span> No account is called &quot;nobody-by-this-name&quot;\.<\/p>/)
  t.match(unknown.body, /value="nobody-by-this-name"/, 'the input is kept')
  const malformed = await client.post(members, { username: 'x', role: 'owner' })
  t.equal(malformed.statusCode, 400)
  for (const name of ['username', 'role']) t.match(malformed.body, new RegExp(`id="${name}-error"`), `${name} is flagged`)

  t.equal((await client.post(members, { username: bob.username.toUpperCase(), role: 'editor' })).statusCode, 303, 'usernames in any case')
  const added = await client.get(members)
  t.match(added.body, `${bob.username} can now read and write the tasks of “Kitchen”.`)
  t.match(added.body, new RegExp(`${bob.username}</th>\\s*<td data-label="Role">Editor</td>`))
  const again = await client.post(members, { username: bob.username, role: 'viewer' })
  t.equal(again.statusCode, 409)
  t.match(again.body, /id="username-error"><span class="visually-hidden">Error:<\/span> &quot;[^&]+&quot; is already a member of this project\./)

  await addMember(owner, id, carol, 'viewer')
  t.equal((await client.post(`${members}/${carolId}/role`, { role: 'editor' })).statusCode, 303)
  const changed = await client.get(members)
  t.match(changed.body, `${carol.username} is now an editor of “Kitchen”.`)
  t.equal(selectedOf(changed.body, `role-${carolId}`), 'Editor')
  t.equal((await client.post(`${members}/${carolId}/role`, { role: 'admin' })).statusCode, 400, 'a role that is none')

  const ownLeave = await client.post(`/app/projects/${id}/leave`)
  t.equal(ownLeave.statusCode, 409, 'the owner cannot leave')
  t.match(ownLeave.body, /<div class="error-summary"[\s\S]*You own this project: hand it over to another member first, or delete it\./)
  const ownRole = await client.post(`${members}/${ownerId}/role`, { role: 'viewer' })
  t.equal(ownRole.statusCode, 409, 'nor demote themself')
  t.match(ownRole.body, /hand it over by making another member its owner/)

  const asEditor = await bob.client.get(members)
  t.notMatch(asEditor.body, /Add a member|Change role/, 'only the owner shares and changes roles')
  t.match(asEditor.body, /<button type="submit" class="danger-button">Leave “Kitchen”<\/button>/)
  const editorAdds = await bob.client.post(members, { username: owner.username, role: 'viewer' })
  t.equal(editorAdds.statusCode, 403, 'an editor who shares gets an error page')
  t.match(editorAdds.body, /<h1>That is not allowed<\/h1>/)

  const handed = await client.post(`${members}/${bobId}/role`, { role: 'owner' })
  t.equal(handed.statusCode, 303)
  const handedPage = await client.get(members)
  t.match(handedPage.body, `${bob.username} now owns “Kitchen”; you are an editor.`)
  t.match(handedPage.body, new RegExp(`${owner.username} <span class="badge">You</span></th>\\s*<td data-label="Role">Editor</td>`))
  t.notMatch(handedPage.body, /Add a member/, 'the old owner no longer shares')
  t.match((await bob.client.get(members)).body, /Add a member/, 'the new owner does')

  t.equal((await bob.client.post(`${members}/${carolId}/remove`)).statusCode, 303)
  t.match((await bob.client.get(members)).body, `${carol.username} no longer has access to “Kitchen”; their tasks there are unassigned.`)
  t.equal((await carol.client.get(`/app/projects/${id}`)).statusCode, 404, 'a removed member loses access at once')

  const left = await client.post(`/app/projects/${id}/leave`)
  t.equal(left.statusCode, 303)
  t.equal(left.headers.location, '/app/projects')
  t.match((await client.get('/app/projects')).body, /You left “Kitchen”\./)
  t.equal((await client.get(members)).statusCode, 404)

  const inbox = await inboxId(app, bob)
  const inboxMembers = await bob.client.get(`/app/projects/${inbox}/members`)
  t.match(inboxMembers.body, /Your Inbox cannot be shared/)
  t.notMatch(inboxMembers.body, /Add a member/)
  const shareInbox = await bob.client.post(`/app/projects/${inbox}/members`, { username: owner.username, role: 'viewer' })
  t.equal(shareInbox.statusCode, 409)
  t.match(shareInbox.body, /The Inbox cannot be shared/)
})

tap.test('the list\'s project switcher and "assigned to me"', async (t) => {
  const app = await buildWeb(t)
  const [owner, bob] = [await signUp(app, 'owner'), await signUp(app, 'bob')]
  const kitchen = await createProject(owner, 'Kitchen')
  await addMember(owner, kitchen, bob, 'editor')
  const bobId = await userId(app, bob)
  await createTask(owner, { title: 'Loose end' })
  await createTask(owner, { title: 'Tiles', project_id: kitchen, assignee_id: bobId })
  await createTask(owner, { title: 'Paint', project_id: kitchen })
  await createTask(bob, { title: 'Bob alone' })

  const all = await owner.client.get('/app/tasks')
  t.same(titlesOf(all.body), ['Paint', 'Tiles', 'Loose end'], 'every project by default')
  t.same(labelsOf(all.body, 'f-project_id'), ['All projects', 'Inbox', 'Kitchen'])
  t.equal(selectedOf(all.body, 'f-project_id'), 'All projects')
  t.same(labelsOf(all.body, 'f-assignee_id'), ['Anyone', 'Me', 'Nobody'])
  t.match(all.body, /<span class="project">In Kitchen<\/span>\s*<span class="assignee">Assigned to bob[^<]*<\/span>/, 'each task\'s project and assignee')
  t.match(all.body, /<a class="button" href="\/app\/tasks\/new">New task<\/a>/)

  const inKitchen = await owner.client.get(`/app/tasks?project_id=${kitchen}`)
  t.same(titlesOf(inKitchen.body), ['Paint', 'Tiles'])
  t.match(inKitchen.body, /<h1>Your tasks in “Kitchen”<\/h1>/)
  t.equal(selectedOf(inKitchen.body, 'f-project_id'), 'Kitchen')
  t.match(inKitchen.body, `<a class="button" href="/app/tasks/new?project_id=${kitchen}">New task</a>`, 'a new task goes to the project in view')
  t.match(inKitchen.body, `<a href="/app/projects/${kitchen}/members">Members (2)</a>`)
  t.same(titlesOf((await owner.client.get(`/app/tasks?project_id=${kitchen.toUpperCase()}&assignee_id=none`)).body), ['Paint'])

  const paged = await owner.client.get(`/app/tasks?project_id=${kitchen}&limit=1`)
  const next = /<a href="([^"]+)" rel="next">/.exec(paged.body)?.[1]?.replaceAll('&amp;', '&')
  t.match(next, new RegExp(`^/app/tasks\\?project_id=${kitchen}&limit=1&cursor=`), 'paging keeps the project')
  t.same(titlesOf((await owner.client.get(next!)).body), ['Tiles'])

  const mine = await bob.client.get('/app/tasks?assignee_id=me')
  t.same(titlesOf(mine.body), ['Tiles'])
  t.match(mine.body, /<h1>Assigned to you<\/h1>/)
  t.match(mine.body, /<a href="\/app\/tasks\?assignee_id=me" aria-current="page">Assigned to me<\/a>/)
  t.match(mine.body, /<span class="assignee">Assigned to you<\/span>/)
  t.same(titlesOf((await bob.client.get('/app/tasks')).body), ['Bob alone', 'Paint', 'Tiles'], 'his own and the shared ones, not the owner\'s Inbox')
  t.same(titlesOf((await owner.client.get('/app/tasks?assignee_id=me')).body), [])

  const foreign = await owner.client.get(`/app/tasks?project_id=${await inboxId(app, bob)}`)
  t.equal(foreign.statusCode, 400, 'someone else\'s project is not a choice')
  t.match(foreign.body, /id="project_id-error"/)
  t.notMatch(foreign.body, /Bob alone/)
  const odd = await owner.client.get(`/app/tasks?project_id=kitchen&assignee_id=${bobId}`)
  t.equal(odd.statusCode, 400)
  for (const name of ['project_id', 'assignee_id']) t.match(odd.body, new RegExp(`id="${name}-error"`), `${name} is flagged`)
})

tap.test('the task form: project and assignee choices, moves, and an assignee who is not a member', async (t) => {
  const app = await buildWeb(t)
  const [owner, bob, carol] = [await signUp(app, 'owner'), await signUp(app, 'bob'), await signUp(app, 'carol')]
  const kitchen = await createProject(owner, 'Kitchen')
  const garden = await createProject(owner, 'Garden')
  const shed = await createProject(carol, 'Shed')
  await addMember(owner, kitchen, bob, 'editor')
  await addMember(owner, kitchen, carol, 'viewer')
  await addMember(carol, shed, owner, 'viewer')
  const [ownerId, bobId] = [await userId(app, owner), await userId(app, bob)]
  const inbox = await inboxId(app, owner)
  const { client } = owner
  const stored = async (id: string) => (await app.tasksRepository.get(ownerId, id))!

  const blank = await client.get('/app/tasks/new')
  t.same(labelsOf(blank.body, 'f-project_id'), ['Inbox', 'Garden', 'Kitchen'], 'the projects you own or edit, not those you view')
  t.equal(selectedOf(blank.body, 'f-project_id'), 'Inbox', 'new tasks go to the Inbox by default')
  t.same(labelsOf(blank.body, 'f-assignee_id'), ['Nobody', `${owner.username} (you)`])
  const inKitchen = await client.get(`/app/tasks/new?project_id=${kitchen}`)
  t.equal(selectedOf(inKitchen.body, 'f-project_id'), 'Kitchen', 'or to the project in view')
  t.same(labelsOf(inKitchen.body, 'f-assignee_id'), ['Nobody', `${owner.username} (you)`, bob.username, carol.username], 'its members')
  t.match(inKitchen.body, /id="assignee_id-hint">Members of “Kitchen”\.<\/p>/)
  t.equal(selectedOf((await client.get(`/app/tasks/new?project_id=${shed}`)).body, 'f-project_id'), 'Inbox', 'not to one you only view')

  const id = await createTask(owner, { title: 'Tiles', project_id: kitchen, assignee_id: bobId })
  t.match(await stored(id), { project_id: kitchen, assignee_id: bobId, created_by: ownerId })
  const notMember = await client.post('/app/tasks', { title: 'Mow', priority: 'low', project_id: inbox, assignee_id: bobId })
  t.equal(notMember.statusCode, 422, 'an assignee who is not a member of the project')
  t.match(notMember.body, /id="assignee_id-error"><span class="visually-hidden">Error:<\/span> This person is not a member of the task&#39;s project/)
  t.match(notMember.body, /value="Mow"/, 'the form comes back as it was left')
  t.same(labelsOf(notMember.body, 'f-assignee_id'), ['Nobody', `${owner.username} (you)`], 'offering the chosen project\'s members')

  const edit = await client.get(`/app/tasks/${id}`)
  t.equal(selectedOf(edit.body, 'f-project_id'), 'Kitchen')
  t.equal(selectedOf(edit.body, 'f-assignee_id'), bob.username)
  const moved = await client.post(`/app/tasks/${id}`, { title: 'Tiles', priority: 'medium', project_id: garden, assignee_id: bobId, version: '1' })
  t.equal(moved.statusCode, 303, 'a move keeping the assignee as it was')
  t.match((await client.get('/app/tasks')).body, /Task “Tiles” saved and moved to “Garden”\. It is no longer assigned: its assignee is not a member there\./)
  t.match(await stored(id), { project_id: garden, assignee_id: null }, 'unassigned, as the API\'s moves do')

  const assign = await client.post(`/app/tasks/${id}`, { title: 'Tiles', priority: 'medium', project_id: garden, assignee_id: bobId, version: '2' })
  t.equal(assign.statusCode, 422, 'assigning a non-member is refused on the form')
  t.match(assign.body, /id="assignee_id-error"/)
  t.match(assign.body, /name="version" value="2"/)
  const back = await client.post(`/app/tasks/${id}`, { title: 'Tiles', priority: 'medium', project_id: kitchen, assignee_id: bobId, version: '2' })
  t.equal(back.statusCode, 303, 'moved and assigned at once')
  t.match(await stored(id), { project_id: kitchen, assignee_id: bobId })
  t.match((await client.get('/app/tasks')).body, /Task “Tiles” saved and moved to “Kitchen”\.<\/p>/)
  t.equal((await client.post(`/app/tasks/${id}`, { title: 'Tiles', priority: 'high', project_id: garden, assignee_id: '', version: '3' })).statusCode, 303)
  t.match(await stored(id), { project_id: garden, assignee_id: null, priority: 'high' }, 'moved and unassigned at once')
  t.match((await client.get('/app/tasks')).body, /Task “Tiles” saved and moved to “Garden”\.<\/p>/, 'by choice: no word of the rule')
  const toShed = await client.post(`/app/tasks/${id}`, { title: 'Tiles', priority: 'high', project_id: shed, version: '4' })
  t.equal(toShed.statusCode, 403, 'not into a project you only view')
  t.equal((await stored(id)).project_id, garden)
})

tap.test('a viewer reads a shared project\'s tasks and gets error pages for writes; a non-member gets 404 pages', async (t) => {
  const app = await buildWeb(t)
  const [owner, viewer, outsider] = [await signUp(app, 'owner'), await signUp(app, 'viewer'), await signUp(app, 'outsider')]
  const kitchen = await createProject(owner, 'Kitchen')
  await addMember(owner, kitchen, viewer, 'viewer')
  const id = await createTask(owner, { title: 'Tiles', project_id: kitchen })
  const { client } = viewer

  const list = await client.get('/app/tasks')
  t.same(titlesOf(list.body), ['Tiles'], 'a viewer sees the project\'s tasks')
  t.notMatch(list.body, /Complete<span/, 'but no button to complete them')
  t.match((await client.get(`/app/tasks?project_id=${kitchen}`)).body, '<a class="button" href="/app/tasks/new">New task</a>', 'nor to add one there')
  const read = await client.get(`/app/tasks/${id}`)
  t.equal(read.statusCode, 200)
  t.match(read.body, /<h1>Task<\/h1>/)
  t.match(read.body, /You are a viewer of “Kitchen”: only its owner and editors change its tasks\./)
  t.match(read.body, /<fieldset class="plain" disabled>/)
  t.notMatch(read.body, /Save changes|Delete task/)
  t.equal(selectedOf(read.body, 'f-project_id'), 'Kitchen')
  t.same(labelsOf((await client.get(`/app/tasks/new?project_id=${kitchen}`)).body, 'f-project_id'), ['Inbox'], 'no new tasks where you only view')

  for (const [url, fields] of [
    [`/app/tasks/${id}`, { title: 'Mine', priority: 'low', project_id: kitchen, version: '1' }],
    [`/app/tasks/${id}/complete`, { completed: 'true' }],
    [`/app/tasks/${id}/delete`, {}],
    ['/app/tasks', { title: 'Sneaked in', priority: 'low', project_id: kitchen }],
    [`/app/projects/${kitchen}`, { name: 'Mine', version: '1' }],
    [`/app/projects/${kitchen}/delete`, {}],
    [`/app/projects/${kitchen}/members`, { username: outsider.username, role: 'editor' }],
  ] as const) {
    const res = await client.post(url, fields)
    t.equal(res.statusCode, 403, `POST ${url}`)
    t.match(res.body, /<h1>That is not allowed<\/h1>/)
  }
  t.equal((await client.get(`/app/projects/${kitchen}/delete`)).statusCode, 403)
  const project = await client.get(`/app/projects/${kitchen}`)
  t.match(project.body, /<dt>Your role<\/dt><dd>Viewer<\/dd>/)
  t.notMatch(project.body, /Save changes|\/delete"/, 'no forms a viewer may not use')
  t.match((await owner.client.get(`/app/tasks/${id}`)).body, /value="Tiles"/, 'nothing changed')

  await outsider.client.get('/app/tasks')
  for (const url of [`/app/projects/${kitchen}`, `/app/projects/${kitchen}/members`, `/app/projects/${kitchen}/delete`, `/app/tasks/${id}`, '/app/projects/not-a-uuid']) {
    const res = await outsider.client.get(url)
    t.equal(res.statusCode, 404, `GET ${url}`)
    t.match(res.body, /<h1>Page not found<\/h1>/)
    t.notMatch(res.body, /Kitchen/)
  }
  const ownerId = await userId(app, owner)
  for (const url of [`/app/projects/${kitchen}`, `/app/projects/${kitchen}/delete`, `/app/projects/${kitchen}/members`, `/app/projects/${kitchen}/leave`,
    `/app/projects/${kitchen}/members/${ownerId}/role`, `/app/projects/${kitchen}/members/${ownerId}/remove`]) {
    const res = await outsider.client.post(url, { name: 'Mine', username: outsider.username, role: 'editor' })
    t.equal(res.statusCode, 404, `POST ${url}`)
  }
  t.equal((await outsider.client.post('/app/tasks', { title: 'Sneaked in', priority: 'low', project_id: kitchen })).statusCode, 404, 'nor can they add a task to it')
})

tap.test('the project pages are HTML under the strict CSP, with every label naming a field', async (t) => {
  const app = await buildWeb(t)
  const [owner, bob] = [await signUp(app, 'owner'), await signUp(app, 'bob')]
  const kitchen = await createProject(owner, 'Kitchen')
  await addMember(owner, kitchen, bob, 'editor')
  const id = await createTask(owner, { title: 'Tiles', project_id: kitchen })
  for (const url of ['/app/projects', `/app/projects/${kitchen}`, `/app/projects/${kitchen}/members`, `/app/projects/${kitchen}/delete`, `/app/tasks/${id}`, `/app/tasks?project_id=${kitchen}`]) {
    const res = await owner.client.get(url)
    t.equal(res.statusCode, 200, url)
    t.equal(res.headers['cache-control'], 'no-store', `${url} is not cached`)
    t.match(res.headers['content-security-policy'], /script-src 'self'/)
    t.notMatch(res.body, /<script|\sstyle=|\son[a-z]+=/i, `${url} has no inline script, style or handler`)
    t.match(res.body, /<h1>/, `${url} has a heading`)
    const labels = [...res.body.matchAll(/<label [^>]*for="([^"]+)"/g)].map((m) => m[1])
    for (const label of labels) t.match(res.body, new RegExp(`id="${label}"`), `${url}: label ${label} names a field`)
    // The hook refuses any POST without a token: a form without one could never be sent.
    t.equal(res.body.match(/<form [^>]*method="post"/g)?.length, res.body.match(/name="_csrf"/g)?.length, `${url}: a CSRF token in every form`)
  }
})
