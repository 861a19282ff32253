import tap from 'tap'
import postgres from 'postgres'
import { startServer } from '../server-process.js'
import { clusterSkip, ownCluster } from '../postgres-cluster.js'

tap.test('PostgreSQL outage under load: 503s with Retry-After within the configured bound, recovery, no acknowledged write lost', { skip: clusterSkip }, async (t) => {
  const cluster = await ownCluster(t)
  const databaseUrl = cluster.databaseUrl

  // Short bounds, so the test shows they hold; the defaults are 3 and 5 s.
  const acquireTimeoutMs = 1500
  const server = await startServer({
    DATABASE_URL: databaseUrl, LOG_LEVEL: 'fatal', RATE_LIMIT_MAX: '1000000', DB_CONNECT_TIMEOUT_MS: '1000', DB_ACQUIRE_TIMEOUT_MS: String(acquireTimeoutMs),
  })
  t.teardown(() => server.stop())
  const headers = { 'content-type': 'application/json' }
  const credentials = JSON.stringify({ username: 'outage_writer', password: 'outage password' })
  t.equal((await fetch(`${server.url}/v1/auth/signup`, { method: 'POST', headers, body: credentials })).status, 201)
  const login = await fetch(`${server.url}/v1/auth/login`, { method: 'POST', headers, body: credentials })
  const token = ((await login.json()) as { access_token: string }).access_token

  type Outcome = { phase: 'before' | 'outage' | 'after', status: number, retryAfter: string | null, ms: number, id?: string }
  const outcomes: Outcome[] = []
  let phase: Outcome['phase'] = 'before'
  let stopped = false
  async function writer (n: number): Promise<void> {
    for (let i = 0; !stopped; i++) {
      const started = Date.now()
      const res = await fetch(`${server.url}/v1/tasks`, {
        method: 'POST',
        headers: { ...headers, authorization: `Bearer ${token}` },
        body: JSON.stringify({ title: `writer ${n} task ${i}` }),
      })
      const body = await res.json() as { id?: string }
      outcomes.push({ phase, status: res.status, retryAfter: res.headers.get('retry-after'), ms: Date.now() - started, ...(res.status === 201 ? { id: body.id! } : {}) })
      if (res.status !== 201) await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  // More writers than the pool has connections, so that queries queue for one during the outage.
  const writers = [1, 2, 3, 4, 5, 6, 7, 8].map(writer)
  await new Promise((resolve) => setTimeout(resolve, 1000))
  phase = 'outage'
  cluster.stop()
  await new Promise((resolve) => setTimeout(resolve, 3000))
  cluster.start()
  phase = 'after'
  await new Promise((resolve) => setTimeout(resolve, 4000))
  stopped = true
  await Promise.all(writers)

  const during = outcomes.filter((o) => o.phase === 'outage')
  const unavailable = during.filter((o) => o.status === 503)
  t.ok(unavailable.length > 0, `503s during the outage (${unavailable.length})`)
  t.ok(unavailable.every((o) => o.retryAfter !== null), 'every 503 carries Retry-After')
  t.same(outcomes.filter((o) => o.status >= 500 && o.status !== 503), [], 'no other 5xx')
  // A request waits for a connection at most DB_ACQUIRE_TIMEOUT_MS; a statement running when the
  // database stops fails at once. The margin is for the rest of the request's work on a busy machine.
  const slowest = Math.max(...outcomes.map((o) => o.ms))
  t.ok(slowest < acquireTimeoutMs + 2000, `no request took longer than the acquisition bound (slowest ${slowest} ms)`)
  const after = outcomes.filter((o) => o.phase === 'after')
  t.ok(after.slice(-10).every((o) => o.status === 201), 'full service after the database is back',
    { last: after.slice(-10).map((o) => o.status), afterStatuses: [...new Set(after.map((o) => o.status))] })
  t.ok(server.child.exitCode === null, 'the process survived')

  const check = postgres(databaseUrl, { max: 1, onnotice: () => {} })
  t.teardown(() => check.end())
  const stored = new Set((await check`select id from tasks`).map((r) => r.id as string))
  const acknowledged = outcomes.filter((o) => o.id !== undefined).map((o) => o.id!)
  t.same(acknowledged.filter((id) => !stored.has(id)), [], `every acknowledged write (${acknowledged.length}) is stored`)
})
