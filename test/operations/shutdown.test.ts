import tap from 'tap'
import { serverDatabaseEnv } from '../helper.js'
import { startServer } from '../server-process.js'

interface Session { accessToken: string }

async function signUpAndLogIn (url: string, username: string): Promise<Session> {
  const credentials = JSON.stringify({ username, password: 'shutdown password' })
  const headers = { 'content-type': 'application/json' }
  const signup = await fetch(`${url}/v1/auth/signup`, { method: 'POST', headers, body: credentials })
  if (signup.status !== 201) throw new Error(`signup: ${signup.status}`)
  const login = await fetch(`${url}/v1/auth/login`, { method: 'POST', headers, body: credentials })
  return { accessToken: ((await login.json()) as { access_token: string }).access_token }
}

async function listAllTaskIds (url: string, session: Session): Promise<Set<string>> {
  const ids = new Set<string>()
  let cursor: string | null = null
  do {
    const query: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`
    const res = await fetch(`${url}/v1/tasks?limit=100${query}`, { headers: { authorization: `Bearer ${session.accessToken}` } })
    const page = await res.json() as { items: Array<{ id: string }>, next_cursor: string | null }
    for (const item of page.items) ids.add(item.id)
    cursor = page.next_cursor
  } while (cursor !== null)
  return ids
}

tap.test('SIGTERM under a steady stream of writes: in-flight requests finish, every 201 is stored, exit 0', async (t) => {
  const env = { ...await serverDatabaseEnv(t), SHUTDOWN_DRAIN_MS: '300', LOG_LEVEL: 'warn', RATE_LIMIT_MAX: '1000000' }
  const server = await startServer(env)
  const session = await signUpAndLogIn(server.url, 'shutdown_writer')

  const created: string[] = []
  const serverErrors: number[] = []
  const connectionErrors: string[] = []
  let stopped = false
  async function writer (n: number): Promise<void> {
    for (let i = 0; !stopped; i++) {
      try {
        const res = await fetch(`${server.url}/v1/tasks`, {
          method: 'POST',
          headers: { authorization: `Bearer ${session.accessToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ title: `writer ${n} task ${i}` }),
        })
        if (res.status === 201) created.push(((await res.json()) as { id: string }).id)
        else if (res.status >= 500) serverErrors.push(res.status)
        else await res.arrayBuffer()
      } catch (err) {
        // Once the server stops listening, new connections are refused: those requests were never accepted.
        connectionErrors.push(String((err as { cause?: { code?: string } }).cause?.code ?? err))
        if (connectionErrors.length > 50) return
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    }
  }
  const writers = [1, 2, 3, 4].map(writer)
  await new Promise((resolve) => setTimeout(resolve, 1500))
  const acknowledgedBeforeSignal = created.length
  const exitCode = await server.stop('SIGTERM')
  await new Promise((resolve) => setTimeout(resolve, 200))
  stopped = true
  await Promise.all(writers)

  t.equal(exitCode, 0, 'exits 0')
  t.ok(acknowledgedBeforeSignal > 10, `a steady stream was flowing (${acknowledgedBeforeSignal} writes before SIGTERM)`)
  t.same(serverErrors, [], 'no request was answered with a 5xx')
  t.ok(connectionErrors.every((c) => c === 'ECONNREFUSED' || c === 'UND_ERR_SOCKET' || c === 'ECONNRESET'),
    `only connection-level refusals after close: ${[...new Set(connectionErrors)].join(', ')}`)

  const restarted = await startServer(env)
  t.teardown(() => restarted.stop())
  const login = await fetch(`${restarted.url}/v1/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'shutdown_writer', password: 'shutdown password' }),
  })
  const stored = await listAllTaskIds(restarted.url, { accessToken: ((await login.json()) as { access_token: string }).access_token })
  const missing = created.filter((id) => !stored.has(id))
  t.same(missing, [], `every acknowledged write (${created.length}) is in the database`)
  // A request the server accepted and then cut off would have left a task nobody was told about.
  t.equal(stored.size, created.length, 'no write was applied without being acknowledged')
})
