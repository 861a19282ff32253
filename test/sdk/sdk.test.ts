/** The SDK against a real listening server: accounts, task CRUD, paging, API keys, typed problems, safe retries. */
import { randomUUID } from 'node:crypto'
import { generate } from 'otplib'
import tap from 'tap'
import { createTasksApi, type MfaChallenge, ProblemError, type Task, type TasksApi, unwrap } from '../../sdk/src/index.js'
import { listeningServer, newAccount } from './support.js'

const baseUrl = await listeningServer(tap)

/** A new user, signed up and logged in through the SDK. */
async function loggedIn (options: { fetch?: (request: Request) => Promise<Response>, retries?: number } = {}): Promise<TasksApi> {
  const api = createTasksApi({ baseUrl, ...options })
  const account = newAccount()
  await unwrap(api.POST('/v1/auth/signup', { body: account }))
  await api.logIn(account.username, account.password)
  return api
}

/** Awaits `pending`, expecting it to throw a ProblemError; returns it. */
async function problemOf (pending: Promise<unknown>): Promise<ProblemError> {
  try {
    await pending
  } catch (error) {
    if (error instanceof ProblemError) return error
    throw error
  }
  throw new Error('expected a ProblemError')
}

tap.test('sign up, log in, read the profile, log out', async (t) => {
  const api = createTasksApi({ baseUrl })
  const account = newAccount()
  const user = await unwrap(api.POST('/v1/auth/signup', { body: { ...account, email: `${account.username}@example.com` } }))
  t.equal(user.username, account.username)
  t.equal(user.role, 'user')

  const changes: unknown[] = []
  const session = createTasksApi({ baseUrl, onCredentialsChange: (c) => changes.push(c) })
  const tokens = await session.logIn(account.username, account.password)
  t.equal(tokens.token_type, 'Bearer')
  t.same(session.credentials, { accessToken: tokens.access_token, refreshToken: tokens.refresh_token })
  t.equal(changes.length, 1, 'the new session is handed to the caller to keep')

  const me = await unwrap(session.GET('/v1/users/me'))
  t.equal(me.id, user.id)

  await session.logOut()
  t.equal(session.credentials, undefined)
  const afterLogout = await problemOf(unwrap(session.GET('/v1/users/me')))
  t.equal(afterLogout.status, 401)
  t.equal(afterLogout.code, 'UNAUTHENTICATED')

  const refused = await problemOf(createTasksApi({ baseUrl }).logIn(account.username, 'wrong-password'))
  t.equal(refused.code, 'INVALID_CREDENTIALS')
})

tap.test('two-factor: logIn asks onMfaRequired for the code, again after a wrong one; without it MFA_REQUIRED is thrown', async (t) => {
  const account = newAccount()
  const api = createTasksApi({ baseUrl })
  await unwrap(api.POST('/v1/auth/signup', { body: account }))
  await api.logIn(account.username, account.password)
  const { secret } = await unwrap(api.POST('/v1/users/me/mfa/totp', { body: { current_password: account.password } }))
  const activation = await generate({ secret })
  const { recovery_codes: recoveryCodes } = await unwrap(api.POST('/v1/users/me/mfa/totp/activate', { body: { code: activation } }))

  const asked: MfaChallenge[] = []
  const session = createTasksApi({ baseUrl })
  const tokens = await session.logIn(account.username, account.password, {
    async onMfaRequired (challenge) {
      asked.push(challenge)
      // The activation spent the current 30 s step, and a code is accepted once: first that one
      // again (refused), then the next step's, as an authenticator shows it.
      if (asked.length === 1) return activation
      const next = await generate({ secret, epoch: Math.floor(Date.now() / 1000) + 30 })
      return `${next.slice(0, 3)} ${next.slice(3)}`
    },
  })
  t.equal(asked.length, 2)
  t.same(asked[0], { username: account.username }, 'asked first without an error')
  t.equal(asked[1]!.error?.code, 'INVALID_MFA_CODE', 'asked again after a wrong code, with the refusal')
  t.same(session.credentials, { accessToken: tokens.access_token, refreshToken: tokens.refresh_token })
  t.equal((await unwrap(session.GET('/v1/users/me'))).mfa_enabled, true)

  const withRecovery = createTasksApi({ baseUrl })
  await withRecovery.logIn(account.username, account.password, { onMfaRequired: () => ({ recovery_code: recoveryCodes[0]! }) })
  t.equal((await unwrap(withRecovery.GET('/v1/users/me'))).username, account.username, 'a recovery code serves instead')

  const plain = createTasksApi({ baseUrl })
  const required = await problemOf(plain.logIn(account.username, account.password))
  t.equal(required.status, 401)
  t.equal(required.code, 'MFA_REQUIRED', 'without onMfaRequired the refusal is thrown, as before')
  t.match(required.problem.mfa_token, /^mfa_/)
  t.equal(plain.credentials, undefined)

  const wrongPassword = await problemOf(plain.logIn(account.username, 'wrong-password', { onMfaRequired: () => { throw new Error('asked for a code') } }))
  t.equal(wrongPassword.code, 'INVALID_CREDENTIALS', 'a wrong password is thrown before any code is asked for')

  const givingUp = await plain.logIn(account.username, account.password, { onMfaRequired: () => { throw new Error('cancelled') } }).catch((err: unknown) => err)
  t.match(givingUp, { message: 'cancelled' }, 'the callback gives up by throwing')
})

tap.test('task CRUD with ETags', async (t) => {
  const api = await loggedIn()
  const created = await api.POST('/v1/tasks', { body: { title: 'Write the SDK', priority: 'high', tags: ['sdk'] } })
  t.equal(created.response.status, 201)
  const task = created.data!
  t.equal(created.response.headers.get('location'), `/v1/tasks/${task.id}`)
  t.match(task, { title: 'Write the SDK', priority: 'high', tags: ['sdk'], completed: false, description: null })

  const read = await api.GET('/v1/tasks/{id}', { params: { path: { id: task.id } } })
  t.same(read.data, task)
  const etag = read.response.headers.get('etag')!
  t.ok(etag, 'ETag sent')

  const replaced = await unwrap(api.PUT('/v1/tasks/{id}', {
    params: { path: { id: task.id }, header: { 'if-match': etag } },
    body: { title: 'Write and test the SDK', description: 'openapi-fetch underneath', priority: 'medium', due_at: null, tags: ['sdk', 'tests'], completed: false },
  }))
  t.equal(replaced.title, 'Write and test the SDK')

  const patched = await unwrap(api.PATCH('/v1/tasks/{id}', { params: { path: { id: task.id } }, body: { completed: true } }))
  t.equal(patched.completed, true)
  t.type(patched.completed_at, 'string', 'completing stamps completed_at')

  const deleted = await api.DELETE('/v1/tasks/{id}', { params: { path: { id: task.id } } })
  t.equal(deleted.response.status, 204)
  const gone = await problemOf(unwrap(api.GET('/v1/tasks/{id}', { params: { path: { id: task.id } } })))
  t.equal(gone.status, 404)
  t.equal(gone.code, 'TASK_NOT_FOUND')
})

tap.test('the iterator pages through 200 tasks', async (t) => {
  let listCalls = 0
  const api = await loggedIn({
    fetch: (request) => {
      if (request.method === 'GET' && new URL(request.url).pathname === '/v1/tasks') listCalls += 1
      return fetch(request)
    },
  })
  const titles = Array.from({ length: 200 }, (_, i) => `Task ${String(i).padStart(3, '0')}`)
  for (let i = 0; i < titles.length; i += 20) {
    await Promise.all(titles.slice(i, i + 20).map((title) => unwrap(api.POST('/v1/tasks', { body: { title, tags: i % 40 === 0 ? ['even'] : [] } }))))
  }

  const seen: Task[] = []
  for await (const task of api.items('/v1/tasks', { sort: 'title', limit: 30 })) seen.push(task)
  t.equal(seen.length, 200)
  t.same(seen.map((task) => task.title), titles, 'every task once, in the requested order')
  t.equal(listCalls, 7, '200 tasks at 30 a page is 7 pages')

  const tagged: string[] = []
  for await (const task of api.items('/v1/tasks', { tag: ['even'], limit: 100 })) tagged.push(task.title)
  t.equal(tagged.length, 100, 'filters are kept from page to page')

  const early: Task[] = []
  for await (const task of api.items('/v1/tasks', { limit: 10 })) {
    early.push(task)
    if (early.length === 15) break
  }
  t.equal(early.length, 15, 'breaking out stops the paging')
})

tap.test('the iterator pages projects and, with path parameters, a project\'s members', async (t) => {
  const owner = await loggedIn()
  const project = await unwrap(owner.POST('/v1/projects', { body: { name: 'Shared' } }))
  const usernames: string[] = []
  for (let i = 0; i < 5; i++) {
    const member = await loggedIn()
    const me = await unwrap(member.GET('/v1/users/me'))
    await unwrap(owner.POST('/v1/projects/{id}/members', { params: { path: { id: project.id } }, body: { username: me.username, role: 'viewer' } }))
    usernames.push(me.username)
  }
  const members: string[] = []
  for await (const member of owner.items('/v1/projects/{id}/members', { limit: 2 }, { id: project.id })) members.push(member.username)
  t.same(members.slice(1), usernames, 'every member once, the owner first, across three pages')
  const projects: string[] = []
  for await (const item of owner.items('/v1/projects', { sort: 'name', limit: 1 })) projects.push(item.name)
  t.same(projects, ['Inbox', 'Shared'])
})

tap.test('an API key works as credentials', async (t) => {
  const api = await loggedIn()
  await unwrap(api.POST('/v1/tasks', { body: { title: 'Seen by the integration' } }))
  const created = await unwrap(api.POST('/v1/api-keys', { body: { name: 'ci', scopes: ['tasks:read'] } }))
  const integration = createTasksApi({ baseUrl, credentials: { apiKey: created.key } })
  const page = await unwrap(integration.GET('/v1/tasks'))
  t.same(page.items.map((task) => task.title), ['Seen by the integration'])
  const denied = await problemOf(unwrap(integration.POST('/v1/tasks', { body: { title: 'read-only key' } })))
  t.equal(denied.status, 403)
  t.equal(denied.code, 'INSUFFICIENT_SCOPE')
})

tap.test('errors arrive as typed problems', async (t) => {
  const api = await loggedIn()

  const invalid = await problemOf(unwrap(api.POST('/v1/tasks', { body: { title: '' } })))
  t.equal(invalid.status, 400)
  t.equal(invalid.code, 'VALIDATION_FAILED')
  t.match(invalid.problem.errors, [{ path: '/title' }])
  t.equal(invalid.problem.request_id, invalid.response.headers.get('x-request-id'))

  const anonymous = await problemOf(unwrap(createTasksApi({ baseUrl }).GET('/v1/tasks')))
  t.equal(anonymous.status, 401)
  t.equal(anonymous.code, 'UNAUTHENTICATED')
  const badToken = await problemOf(unwrap(createTasksApi({ baseUrl, credentials: { accessToken: 'not-a-jwt' } }).GET('/v1/tasks')))
  t.equal(badToken.code, 'INVALID_TOKEN')

  const missing = await problemOf(unwrap(api.GET('/v1/tasks/{id}', { params: { path: { id: randomUUID() } } })))
  t.equal(missing.status, 404)
  t.equal(missing.code, 'TASK_NOT_FOUND')

  const task = await unwrap(api.POST('/v1/tasks', { body: { title: 'Contended' } }))
  const stale = await problemOf(unwrap(api.PATCH('/v1/tasks/{id}', {
    params: { path: { id: task.id }, header: { 'if-match': '"not-the-current-etag"' } },
    body: { title: 'Lost update' },
  })))
  t.equal(stale.status, 412)
  t.equal(stale.code, 'PRECONDITION_FAILED')

  const key = randomUUID()
  await unwrap(api.POST('/v1/tasks', { params: { header: { 'idempotency-key': key } }, body: { title: 'First' } }))
  const reused = await problemOf(unwrap(api.POST('/v1/tasks', { params: { header: { 'idempotency-key': key } }, body: { title: 'Second' } })))
  t.equal(reused.status, 422)
  t.equal(reused.code, 'IDEMPOTENCY_KEY_REUSED')
})

tap.test('with retries, a POST whose response was lost is sent again under the same key and creates one task', async (t) => {
  const keys: string[] = []
  let dropped = false
  // Delivers the first create to the server, then loses its response, as a dropped connection would.
  const lossy = async (request: Request): Promise<Response> => {
    if (request.method === 'POST' && new URL(request.url).pathname === '/v1/tasks') keys.push(request.headers.get('idempotency-key') ?? '')
    const response = await fetch(request)
    if (!dropped && request.method === 'POST' && new URL(request.url).pathname === '/v1/tasks') {
      dropped = true
      throw new TypeError('fetch failed')
    }
    return response
  }

  const api = await loggedIn({ fetch: lossy, retries: 2 })
  const created = await api.POST('/v1/tasks', { body: { title: 'Exactly once' } })
  t.equal(created.response.status, 201)
  t.equal(created.response.headers.get('idempotent-replayed'), 'true', 'the second attempt was a replay')
  t.equal(keys.length, 2)
  t.match(keys[0], /^[0-9a-f-]{36}$/, 'a key was generated')
  t.equal(keys[1], keys[0], 'the retry carried the same key')
  const page = await unwrap(api.GET('/v1/tasks'))
  t.same(page.items.map((task) => task.title), ['Exactly once'])

  dropped = false
  const plain = await loggedIn({ fetch: lossy })
  await t.rejects(plain.POST('/v1/tasks', { body: { title: 'No retries' } }), TypeError, 'without retries the failure reaches the caller')
  t.equal(keys.at(-1), '', 'and no key is invented')
})

tap.test('events() follows the change feed: what happened, then what happens, until aborted', async (t) => {
  const api = await loggedIn()
  const project = await unwrap(api.POST('/v1/projects', { body: { name: 'Followed' } }))
  const first = await unwrap(api.POST('/v1/tasks', { body: { title: 'Before', project_id: project.id } }))
  const abort = new AbortController()
  const seen: Array<[string, unknown]> = []
  const following = (async () => {
    for await (const event of api.events({ limit: 2, intervalMs: 20, signal: abort.signal })) {
      seen.push([event.type, event.data.id])
      if (event.type === 'task.updated') abort.abort()
    }
  })()
  // Written while the iteration waits for news.
  await new Promise((resolve) => setTimeout(resolve, 100))
  await unwrap(api.PATCH('/v1/tasks/{id}', { params: { path: { id: first.id } }, body: { completed: true } }))
  await following
  t.same(seen, [['project.created', seen[0]![1]], ['project.created', project.id], ['task.created', first.id], ['task.updated', first.id]], 'the Inbox, the history, then the news, in order')
  t.ok(abort.signal.aborted)
})

tap.test('events({ stream: true }) follows the live stream, and reopens it after the last event when it ends', async (t) => {
  const api = await loggedIn()
  // The Inbox's event shows once every older transaction on the server has finished.
  let history = await unwrap(api.GET('/v1/events', { params: { query: {} } }))
  while (history.items.length === 0) history = await unwrap(api.GET('/v1/events', { params: { query: {} } }))
  const first = await unwrap(api.POST('/v1/tasks', { body: { title: 'Before' } }))
  const opened: string[] = []
  // The first stream ends right after its first event, as when the server shuts down.
  const ending = await loggedIn({
    fetch: async (request) => {
      const response = await fetch(request)
      if (new URL(request.url).pathname !== '/v1/events/stream') return response
      opened.push(new URL(request.url).search)
      if (opened.length > 1) return response
      const reader = response.body!.getReader()
      let text = ''
      const body = new ReadableStream<Uint8Array>({
        async pull (controller) {
          const { done, value } = await reader.read()
          if (done) return controller.close()
          controller.enqueue(value)
          text += new TextDecoder().decode(value)
          if (text.includes('event: task.created')) {
            controller.close()
            await reader.cancel()
          }
        },
      })
      return new Response(body, { status: response.status, headers: response.headers })
    },
  })
  ending.setCredentials(api.credentials)
  const abort = new AbortController()
  const seen: string[] = []
  for await (const event of ending.events({ stream: true, after: history.items[0]!.id, signal: abort.signal })) {
    seen.push(event.data.title as string)
    if (seen.length === 1) await unwrap(api.POST('/v1/tasks', { body: { title: 'Meanwhile' } }))
    if (seen.length === 2) abort.abort()
  }
  t.same(seen, [first.title, 'Meanwhile'], 'the history after `after`, then the news, across the reconnection')
  t.same(opened, [`?after=${history.items[0]!.id}`, `?after=${(await unwrap(api.GET('/v1/events', { params: { query: {} } }))).items[1]!.id}`], 'reopened after the last event received')

  let thrown: unknown
  try {
    for await (const event of api.events({ stream: true, after: 'not-a-place' })) t.fail(`no event expected: ${event.id}`)
  } catch (err) {
    thrown = err
  }
  t.ok(thrown instanceof ProblemError && thrown.problem.code === 'VALIDATION_FAILED', 'a refusal is thrown as a problem')
})
