/**
 * Live streams across server processes: an event written through one instance reaches a stream held
 * by another within a second, woken through PostgreSQL's LISTEN/NOTIFY or through Redis (each
 * instance's own poll is set to a minute, so only the wake-up can deliver in time); SIGTERM ends a
 * stream cleanly and the server exits at once.
 */
import { randomBytes } from 'node:crypto'
import tap from 'tap'
import { serverDatabaseEnv, TEST_DATABASE_URL } from '../helper.js'
import { startServer } from '../server-process.js'
import { openStream } from './stream-client.js'

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const skip = TEST_DATABASE_URL === undefined ? 'several instances need a shared PostgreSQL (TEST_DATABASE_URL)' : false

async function post (url: string, body: unknown, token?: string): Promise<Response> {
  return await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) }, body: JSON.stringify(body) })
}

async function signUp (base: string): Promise<string> {
  const credentials = { username: `streams_${randomBytes(4).toString('hex')}`, password: 'a stream password' }
  if ((await post(`${base}/v1/auth/signup`, credentials)).status !== 201) throw new Error('signup failed')
  return (await (await post(`${base}/v1/auth/login`, credentials)).json() as { access_token: string }).access_token
}

for (const carrier of ['LISTEN/NOTIFY', 'Redis'] as const) {
  tap.test(`an event written through one instance reaches a stream on another within a second (${carrier})`, { skip }, async (t) => {
    const database = await serverDatabaseEnv(t)
    const shared = {
      ...database,
      JWT_SECRET: randomBytes(32).toString('hex'),
      EVENTS_STREAM_POLL_MS: '60000',
      LOG_LEVEL: 'warn',
      // LISTEN on a connection URL of its own, as behind PgBouncer; or Redis instead.
      ...(carrier === 'Redis' ? { REDIS_URL, REDIS_KEY_PREFIX: `tasks-api-test:${randomBytes(6).toString('hex')}:` } : { DATABASE_LISTEN_URL: database.DATABASE_URL! }),
    }
    const a = await startServer(shared)
    const b = await startServer({ ...shared, MIGRATE_ON_START: 'false' })
    t.teardown(async () => { await a.stop(); await b.stop() })

    const token = await signUp(a.url)
    // A stream from now starts at the feed's horizon: past the Inbox's event once a poll shows it.
    while ((await (await fetch(`${b.url}/v1/events`, { headers: { authorization: `Bearer ${token}` } })).json() as { items: unknown[] }).items.length === 0) {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    const stream = await openStream(b.url, token)
    t.teardown(stream.close)
    const latencies: number[] = []
    for (let i = 0; i < 5; i++) {
      const res = await post(`${a.url}/v1/tasks`, { title: `via A #${i}` }, token)
      t.equal(res.status, 201)
      const written = Date.now()
      const [event] = (await stream.waitFor(i + 1, 5_000)).slice(i)
      latencies.push(Date.now() - written)
      t.equal(event!.data.data.title, `via A #${i}`)
    }
    t.ok(Math.max(...latencies) < 1000, `every event reached B within a second (ms: ${latencies.join(', ')})`)
  })
}

tap.test('SIGTERM ends open streams cleanly, and the server exits without waiting for them', async (t) => {
  const server = await startServer({ ...await serverDatabaseEnv(t), JWT_SECRET: randomBytes(32).toString('hex'), LOG_LEVEL: 'warn' })
  t.teardown(async () => { await server.stop('SIGKILL') })
  const token = await signUp(server.url)
  const stream = await openStream(server.url, token)
  await post(`${server.url}/v1/tasks`, { title: 'before the end' }, token)
  await stream.waitFor(1)
  const started = Date.now()
  t.equal(await server.stop('SIGTERM'), 0, 'exit code 0')
  t.same(await stream.ended, { clean: true }, 'the stream ended as a response ends, not as a broken connection')
  t.ok(Date.now() - started < 5_000, `it did not wait out the shutdown timeout (${Date.now() - started} ms)`)
})
