import { execFileSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tap from 'tap'
import postgres from 'postgres'
import { TEST_DATABASE_URL } from '../helper.js'
import { freePort } from '../../scripts/free-port.js'
import { startServer } from '../server-process.js'

// A PostgreSQL cluster of the test's own, so stopping it disturbs nobody else.
const versions = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').sort() : []
const bin = versions.length > 0 ? `/usr/lib/postgresql/${versions.at(-1)}/bin` : undefined
const skip = TEST_DATABASE_URL === undefined
  ? 'runs with the PostgreSQL suite (TEST_DATABASE_URL)'
  : bin === undefined ? 'PostgreSQL server binaries not installed' : false

function asPostgres (command: string, args: string[]): void {
  // initdb and pg_ctl refuse to run as root.
  const runner = process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', join(bin!, command), ...args]] as const : [join(bin!, command), args] as const
  execFileSync(runner[0], [...runner[1]], { stdio: 'pipe', timeout: 60_000 })
}

tap.test('PostgreSQL outage under load: 503s with Retry-After within the configured bound, recovery, no acknowledged write lost', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tasks-api-outage-'))
  if (process.getuid?.() === 0) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()))
  const dataDir = join(dir, 'cluster')
  const port = await freePort()
  const pgCtl = (action: string, ...extra: string[]) => asPostgres('pg_ctl', ['-D', dataDir, '-w', '-t', '30', ...extra, action])
  const startCluster = () => pgCtl('start', '-l', join(dir, 'log'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`)
  asPostgres('initdb', ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync'])
  startCluster()
  t.teardown(() => {
    try { pgCtl('stop', '-m', 'immediate') } catch { /* already stopped */ }
    rmSync(dir, { recursive: true, force: true })
  })
  const admin = postgres(`postgres://postgres@127.0.0.1:${port}/postgres`, { max: 1, onnotice: () => {} })
  await admin`create database tasks`
  await admin.end()
  const databaseUrl = `postgres://postgres@127.0.0.1:${port}/tasks`

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
  pgCtl('stop', '-m', 'fast')
  await new Promise((resolve) => setTimeout(resolve, 3000))
  startCluster()
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
