/** Error pages, headers and the OpenAPI document; the API keys and account pages. */
import tap from 'tap'
import { assertProblem } from '../helper.js'
import { buildWeb, PageClient, signUp } from './support.js'

tap.test('unknown pages are a friendly 404 page; the API keeps its problem+json', async (t) => {
  const app = await buildWeb(t)
  const page = await app.inject({ method: 'GET', url: '/app/no/such/page' })
  t.equal(page.statusCode, 404)
  t.match(page.headers['content-type'], /^text\/html; charset=utf-8/)
  t.match(page.body, /<h1>Page not found<\/h1>/)
  t.match(page.body, `<code>${page.headers['x-request-id'] as string}</code>`, 'the request id, to quote')
  const api = await app.inject({ method: 'GET', url: '/v1/no/such/thing' })
  assertProblem(t, api, 404, 'NOT_FOUND')
  const beside = await app.inject({ method: 'GET', url: '/apple' })
  assertProblem(t, beside, 404, 'NOT_FOUND')
})

tap.test('an unexpected failure is a 500 page with the request id and no internals', async (t) => {
  const app = await buildWeb(t)
  const user = await signUp(app)
  const list = app.tasksRepository.list
  app.tasksRepository.list = async () => { throw new Error('secret internals') }
  t.teardown(() => { app.tasksRepository.list = list })
  const res = await user.client.get('/app/tasks')
  t.equal(res.statusCode, 500)
  t.match(res.body, /<h1>Something went wrong<\/h1>/)
  t.match(res.body, res.headers['x-request-id'] as string)
  t.notMatch(res.body, /secret internals/)
})

tap.test('pages are HTML under the strict CSP, uncached, with no inline script or style', async (t) => {
  const app = await buildWeb(t)
  const user = await signUp(app)
  await user.client.get('/app/tasks/new')
  await user.client.post('/app/tasks', { title: 'One', priority: 'low' })
  for (const url of ['/app/tasks', '/app/tasks/new', '/app/api-keys', '/app/account', '/app/account/two-factor/enrol']) {
    const res = await user.client.get(url)
    t.equal(res.statusCode, 200, url)
    t.equal(res.headers['cache-control'], 'no-store', `${url} is not cached`)
    t.match(res.headers['content-security-policy'], /script-src 'self'/)
    t.equal(res.headers['referrer-policy'], 'no-referrer', `${url} has the document headers`)
    t.notMatch(res.body, /<script|\sstyle=|\son[a-z]+=/i, `${url} has no inline script, style or handler`)
    t.match(res.body, /<h1>/, `${url} has a heading`)
    t.match(res.body, /<main id="main"/)
    const labels = [...res.body.matchAll(/<label for="([^"]+)"/g)].map((m) => m[1])
    for (const id of labels) t.match(res.body, new RegExp(`id="${id}"`), `${url}: label ${id} names a field`)
  }
  const anonymous = new PageClient(app)
  for (const url of ['/app/login', '/app/signup', '/app/forgot-password', '/app/verify-email?token=ev_x']) t.equal((await anonymous.get(url)).statusCode, 200, url)
  t.equal((await user.client.get('/app')).headers.location, '/app/tasks')
  t.equal((await user.client.get('/app/login')).headers.location, '/app/tasks', 'logged in already')
})

tap.test('the pages are not in the OpenAPI document', async (t) => {
  const app = await buildWeb(t)
  const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json<{ paths: Record<string, unknown> }>()
  t.same(Object.keys(document.paths).filter((path) => path.startsWith('/app')), [])
  t.ok(Object.keys(document.paths).includes('/v1/tasks'))
})

tap.test('API keys: created with the key shown once, usable with the API, revoked', async (t) => {
  const app = await buildWeb(t)
  const user = await signUp(app)
  const { client } = user
  const empty = await client.get('/app/api-keys')
  t.match(empty.body, /You have no API keys/)

  const bad = await client.post('/app/api-keys', { name: '', expires_at: '2001-01-01T00:00' })
  t.equal(bad.statusCode, 400)
  for (const name of ['name', 'scopes', 'expires_at']) t.match(bad.body, new RegExp(`id="${name}-error"`), `${name} is flagged`)

  const created = await client.post('/app/api-keys', { name: 'backup script', scopes: ['tasks:read'] })
  t.equal(created.statusCode, 201)
  const key = /id="new-key" class="key" type="text" readonly value="(tk_[^"]+)"/.exec(created.body)?.[1]
  t.ok(key, 'the key is shown')
  const listed = await client.get('/app/api-keys')
  t.match(listed.body, /backup script/)
  t.match(listed.body, new RegExp(`<code>${key!.slice(0, 11)}…</code>`), 'its prefix is listed')
  t.notMatch(listed.body, key!, 'the key itself is never shown again')

  const read = await app.inject({ method: 'GET', url: '/v1/tasks', headers: { 'x-api-key': key! } })
  t.equal(read.statusCode, 200, 'the key works with the API')
  const write = await app.inject({ method: 'POST', url: '/v1/tasks', headers: { 'x-api-key': key! }, payload: { title: 'x' } })
  t.equal(write.statusCode, 403, 'within its scopes only')

  const id = /action="\/app\/api-keys\/([0-9a-f-]{36})\/revoke"/.exec(listed.body)?.[1]
  const other = await signUp(app, 'other')
  await other.client.get('/app/api-keys')
  t.equal((await other.client.post(`/app/api-keys/${id!}/revoke`)).statusCode, 404, 'nobody else can revoke it')
  const revoked = await client.post(`/app/api-keys/${id!}/revoke`)
  t.equal(revoked.statusCode, 303)
  t.match((await client.get('/app/api-keys')).body, /The API key is revoked/)
  t.equal((await app.inject({ method: 'GET', url: '/v1/tasks', headers: { 'x-api-key': key! } })).statusCode, 401, 'the API refuses it at once')
})
