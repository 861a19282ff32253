import { Agent, request } from 'node:http'
import tap from 'tap'
import { serverDatabaseEnv } from '../helper.js'
import { type ServerProcess, startServer } from '../server-process.js'

interface Session { accessToken: string }

async function logIn (url: string, credentials: { username: string, password: string }): Promise<Session> {
  const login = await fetch(`${url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(credentials) })
  if (login.status !== 200) throw new Error(`login: ${login.status}`)
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

interface Answer { status: number, connection?: string, body: string, reusedSocket: boolean }

/** One POST on `agent`; a connection-level failure rejects with Node's error code and the socket's history. */
async function post (url: string, agent: Agent, token: string, body: string): Promise<Answer> {
  return await new Promise((resolve, reject) => {
    const req = request(`${url}/v1/tasks`, {
      method: 'POST', agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { text += d })
      res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection, body: text, reusedSocket: req.reusedSocket }))
    })
    req.on('error', (err: NodeJS.ErrnoException) => reject(Object.assign(err, { reusedSocket: req.reusedSocket })))
    req.end(body)
  })
}

interface Run { acknowledged: string[], beforeSignal: number, serverErrors: number[], refused: number, resets: string[], closeAnswers: number, exitCode: number | null }

/**
 * Eight writers, each on a keep-alive connection of its own, SIGTERM after 1.5 s, until the server
 * is gone. A writer whose answer closes its connection reconnects, and is refused once the server
 * has stopped listening.
 */
async function writeThroughSigterm (server: ServerProcess, session: Session, run: number): Promise<Run> {
  const result: Run = { acknowledged: [], beforeSignal: 0, serverErrors: [], refused: 0, resets: [], closeAnswers: 0, exitCode: null }
  let signalled = false
  async function writer (n: number): Promise<void> {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      for (let i = 0; ; i++) {
        try {
          const res = await post(server.url, agent, session.accessToken, JSON.stringify({ title: `run ${run} writer ${n} task ${i}` }))
          if (signalled && res.connection === 'close') result.closeAnswers += 1
          if (res.status === 201) result.acknowledged.push((JSON.parse(res.body) as { id: string }).id)
          else if (res.status >= 500) result.serverErrors.push(res.status)
        } catch (err) {
          const { code, reusedSocket } = err as NodeJS.ErrnoException & { reusedSocket: boolean }
          if (code === 'ECONNREFUSED') { result.refused += 1; return }
          result.resets.push(`${code} on a ${reusedSocket ? 'kept-alive' : 'new'} connection`)
          // A new connection reset before the server read from it (the kernel had queued it when
          // the listener closed) is a refusal too; the checks of stored tasks show nothing was applied.
          if (!reusedSocket) return
        }
      }
    } finally {
      agent.destroy()
    }
  }
  const writers = [1, 2, 3, 4, 5, 6, 7, 8].map(writer)
  await new Promise((resolve) => setTimeout(resolve, 1500))
  result.beforeSignal = result.acknowledged.length
  signalled = true
  result.exitCode = await server.stop('SIGTERM')
  await Promise.all(writers)
  return result
}

tap.test('SIGTERM under a stream of writes, at the default settings: no reset, every request read is answered, every 201 stored', async (t) => {
  const env = { ...await serverDatabaseEnv(t), LOG_LEVEL: 'info', RATE_LIMIT_MAX: '1000000' }
  const credentials = { username: 'shutdown_writer', password: 'shutdown password' }
  let server = await startServer(env)
  await fetch(`${server.url}/v1/auth/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(credentials) })
  const acknowledged: string[] = []
  for (let run = 1; run <= 3; run++) {
    const result = await writeThroughSigterm(server, await logIn(server.url, credentials), run)
    acknowledged.push(...result.acknowledged)
    t.equal(result.exitCode, 0, `run ${run}: exits 0`)
    t.ok(result.beforeSignal > 10, `run ${run}: a steady stream was flowing (${result.beforeSignal} writes before SIGTERM)`)
    t.same(result.serverErrors, [], `run ${run}: no request was answered with a 5xx`)
    t.same(result.resets.filter((r) => r.includes('kept-alive')), [], `run ${run}: no kept-alive connection was reset under a request`)
    t.same(result.resets, [], `run ${run}: no reset at all (${result.refused} refused once the server stopped listening)`)
    t.ok(result.closeAnswers > 0, `run ${run}: answers after SIGTERM carry Connection: close (${result.closeAnswers})`)

    // The next run's server (or the last check's) reads what this one stored.
    server = await startServer(env)
    const stored = await listAllTaskIds(server.url, await logIn(server.url, credentials))
    t.same(acknowledged.filter((id) => !stored.has(id)), [], `run ${run}: every acknowledged write (${acknowledged.length}) is stored`)
    // A request applied and then cut off would have left a task nobody was told about.
    t.equal(stored.size, acknowledged.length, `run ${run}: no write was applied without being acknowledged`)
  }
  t.equal(await server.stop('SIGTERM'), 0)
})
