/** The task pages: list with the API's filters, sort and cursors; create, edit, complete, delete. */
import tap from 'tap'
import { buildWeb, createTask, signUp } from './support.js'

const titlesOf = (html: string) => [...html.matchAll(/<h2 class="task-title"><a href="[^"]+">([^<]+)<\/a>/g)].map((m) => m[1])

tap.test('the list filters, sorts and pages like the API', async (t) => {
  const app = await buildWeb(t)
  const user = await signUp(app)
  await createTask(user, { title: 'Buy milk', priority: 'low', tags: 'errands, home', due_at: '2026-12-01T10:00' })
  await createTask(user, { title: 'Renew passport', priority: 'high', tags: 'errands', due_at: '2026-12-20T09:30', description: 'Bring two photos' })
  await createTask(user, { title: 'Write report', priority: 'medium', tags: 'work' })
  const { client } = user

  t.same(titlesOf((await client.get('/app/tasks')).body), ['Write report', 'Renew passport', 'Buy milk'], 'newest first by default')
  t.same(titlesOf((await client.get('/app/tasks?sort=title')).body), ['Buy milk', 'Renew passport', 'Write report'])
  t.same(titlesOf((await client.get('/app/tasks?sort=-priority')).body), ['Renew passport', 'Write report', 'Buy milk'])
  t.same(titlesOf((await client.get('/app/tasks?sort=due_at')).body), ['Buy milk', 'Renew passport', 'Write report'], 'no due date comes last')
  t.same(titlesOf((await client.get('/app/tasks?priority=high')).body), ['Renew passport'])
  t.same(titlesOf((await client.get('/app/tasks?tag=home,+errands')).body), ['Buy milk'], 'every tag must match')
  t.same(titlesOf((await client.get('/app/tasks?q=photo')).body), ['Renew passport'], 'full-text search over the description')
  t.same(titlesOf((await client.get('/app/tasks?due_before=2026-12-20&sort=title')).body), ['Buy milk'])
  t.same(titlesOf((await client.get('/app/tasks?due_after=2026-12-01')).body), ['Renew passport'], 'after the whole day')
  // What an empty filter form sends: every field, most of them empty.
  const empty = await client.get('/app/tasks?q=&completed=&priority=&tag=&due_after=&due_before=&sort=-created_at&limit=20')
  t.equal(titlesOf(empty.body).length, 3)
  t.match(empty.body, /<option value="-created_at" selected>/, 'the form shows the filters in use')

  const first = await client.get('/app/tasks?sort=title&limit=2')
  t.same(titlesOf(first.body), ['Buy milk', 'Renew passport'])
  const next = /<a href="([^"]+)" rel="next">Next page<\/a>/.exec(first.body)?.[1]?.replaceAll('&amp;', '&')
  t.ok(next, 'a next-page link')
  t.match(next, /^\/app\/tasks\?sort=title&limit=2&cursor=/)
  const second = await client.get(next!)
  t.same(titlesOf(second.body), ['Write report'])
  t.notMatch(second.body, /rel="next"/, 'the last page has no next link')
  t.match(second.body, /<a href="\/app\/tasks\?sort=title&amp;limit=2">First page<\/a>/)

  const otherSort = await client.get(next!.replace('sort=title', 'sort=-title'))
  t.equal(otherSort.statusCode, 400, 'a cursor from another sort is refused')
  t.match(otherSort.body, /This page link is out of date/)
  const tampered = await client.get(`${next!.slice(0, -2)}xx`)
  t.equal(tampered.statusCode, 400)

  const bad = await client.get('/app/tasks?priority=urgent&due_before=2026-13-45&limit=1000&sort=size')
  t.equal(bad.statusCode, 400)
  for (const name of ['priority', 'due_before', 'limit', 'sort']) t.match(bad.body, new RegExp(`id="${name}-error"`), `${name} is flagged`)

  const other = await signUp(app, 'other')
  t.equal(titlesOf((await other.client.get('/app/tasks')).body).length, 0, 'nobody sees another person\'s tasks')
  const stolen = await other.client.get(next!)
  t.equal(stolen.statusCode, 400, 'a cursor is only good for its user')
})

tap.test('create: a task from the form; an invalid form comes back with the input and messages', async (t) => {
  const app = await buildWeb(t)
  const user = await signUp(app)
  const form = await user.client.get('/app/tasks/new')
  t.equal(form.statusCode, 200)
  t.match(form.body, /<label for="f-title">Title<\/label>/)
  t.match(form.body, /<h1>New task<\/h1>/)

  const bad = await user.client.post('/app/tasks', { title: '   ', priority: 'urgent', due_at: 'soon', tags: 'x'.repeat(51), description: '<b>kept</b>' })
  t.equal(bad.statusCode, 400)
  t.match(bad.body, /<title>Error: New task/)
  for (const name of ['title', 'priority', 'due_at', 'tags']) {
    t.match(bad.body, new RegExp(`id="${name}-error"`), `${name} has a message`)
    t.match(bad.body, new RegExp(`id="f-${name}"[^>]*aria-describedby="[^"]*${name}-error"[^>]*aria-invalid="true"`), `${name} is tied to its message`)
  }
  t.match(bad.body, /&lt;b&gt;kept&lt;\/b&gt;/, 'the input is kept, and escaped')
  t.match(bad.body, /value="soon"/)

  const id = await createTask(user, { title: 'Pay rent', priority: 'high', due_at: '2026-12-01T17:00', tags: 'home, money, home', description: 'Line one\r\nLine two' })
  const edit = await user.client.get(`/app/tasks/${id}`)
  t.match(edit.body, /value="Pay rent"/)
  t.match(edit.body, /value="2026-12-01T17:00"/)
  t.match(edit.body, /value="home, money"/, 'repeated tags are dropped')
  t.match(edit.body, /<option value="high" selected>/)
  // The same task through the API: one repository, so the two agree.
  const api = await app.tasksRepository.get((await app.usersRepository.findByUsername(user.username))!.id, id)
  t.equal(api?.due_at, '2026-12-01T17:00:00.000000Z')
  t.equal(api?.description, 'Line one\nLine two')
  t.same(api?.tags, ['home', 'money'])
})

tap.test('edit, complete, reopen and delete', async (t) => {
  const app = await buildWeb(t)
  const user = await signUp(app)
  const id = await createTask(user, { title: 'Draft', tags: 'a' })
  const { client } = user

  await client.get(`/app/tasks/${id}`)
  const saved = await client.post(`/app/tasks/${id}`, { title: 'Final', priority: 'low', due_at: '', tags: '', description: '', version: '1' })
  t.equal(saved.statusCode, 303)
  const list = await client.get('/app/tasks')
  t.same(titlesOf(list.body), ['Final'])
  t.match(list.body, /Task “Final” saved\./, 'a message on the next page')
  t.notMatch((await client.get('/app/tasks')).body, /saved\./, 'shown once')

  const stale = await client.post(`/app/tasks/${id}`, { title: 'Stale edit', priority: 'low', version: '1' })
  t.equal(stale.statusCode, 409, 'an edit over a newer version is not applied silently')
  t.match(stale.body, /changed elsewhere since you opened it/)
  t.match(stale.body, /value="Stale edit"/)
  t.match(stale.body, /name="version" value="2"/, 'saving again overwrites knowingly')

  const invalid = await client.post(`/app/tasks/${id}`, { title: '', priority: 'low', version: '2' })
  t.equal(invalid.statusCode, 400)

  const done = await client.post(`/app/tasks/${id}/complete`, { completed: 'true', return_to: '/app/tasks?completed=true' })
  t.equal(done.statusCode, 303)
  t.equal(done.headers.location, '/app/tasks?completed=true', 'back to the list as it was')
  const completed = await client.get('/app/tasks?completed=true')
  t.same(titlesOf(completed.body), ['Final'])
  t.match(completed.body, /<span class="badge done">Completed \w{3}, \d+ \w{3} \d{4}, \d\d:\d\d UTC<\/span>/)
  t.match(completed.body, /<button type="submit" class="secondary">Reopen/)
  const reopened = await client.post(`/app/tasks/${id}/complete`, { completed: 'false', return_to: 'https://evil.example/' })
  t.equal(reopened.headers.location, '/app/tasks', 'return_to never leaves the pages')
  t.same(titlesOf((await client.get('/app/tasks?completed=false')).body), ['Final'])

  await client.get(`/app/tasks/${id}`)
  const deleted = await client.post(`/app/tasks/${id}/delete`)
  t.equal(deleted.statusCode, 303)
  t.match((await client.get('/app/tasks')).body, /Task “Final” deleted\./)
  t.equal((await client.get(`/app/tasks/${id}`)).statusCode, 404)
})

tap.test('someone else\'s task is a 404 page, whatever the action', async (t) => {
  const app = await buildWeb(t)
  const owner = await signUp(app, 'owner')
  const id = await createTask(owner, { title: 'Private' })
  const other = await signUp(app, 'other')
  await other.client.get('/app/tasks')
  for (const [method, url] of [['GET', `/app/tasks/${id}`], ['POST', `/app/tasks/${id}`], ['POST', `/app/tasks/${id}/complete`], ['POST', `/app/tasks/${id}/delete`]] as const) {
    const res = method === 'GET' ? await other.client.get(url) : await other.client.post(url, { title: 'Mine now', priority: 'high', completed: 'true' })
    t.equal(res.statusCode, 404, `${method} ${url}`)
    t.match(res.headers['content-type'], /^text\/html/)
    t.match(res.body, /<h1>Page not found<\/h1>/)
    t.notMatch(res.body, /Private/)
  }
  t.equal((await other.client.get('/app/tasks/not-a-uuid')).statusCode, 404, 'a malformed id is not found either')
  const still = await owner.client.get(`/app/tasks/${id}`)
  t.match(still.body, /value="Private"/, 'unchanged')
  t.notMatch((await owner.client.get('/app/tasks')).body, /class="badge done"/, 'not completed by the other user')
})
