/**
 * Webhook delivery across server processes and faults, with a real receiver: two instances deliver
 * each event exactly once and never the same one at once; an instance killed mid-delivery, and
 * PostgreSQL stopped mid-delivery, delay events but lose none.
 */
import { randomBytes } from 'node:crypto'
import tap from 'tap'
import { serverDatabaseEnv, TEST_DATABASE_URL } from '../helper.js'
import { clusterSkip, ownCluster } from '../postgres-cluster.js'
import { type ServerProcess, startServer } from '../server-process.js'
import { startReceiver, type Receiver } from './receiver.js'

const skip = TEST_DATABASE_URL === undefined ? 'several instances need a shared PostgreSQL (TEST_DATABASE_URL)' : false
const settings = { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_RETRY_SCHEDULE: '1,1,1,1,1,1,1,1', WEBHOOK_TIMEOUT_MS: '2000', LOG_LEVEL: 'warn', RATE_LIMIT_MAX: '100000' }

async function post (url: string, body: unknown, token?: string): Promise<Response> {
  return await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) }, body: JSON.stringify(body) })
}

/** Signs up, and creates a webhook for every task.created of theirs to `receiver`; the token. */
async function hooked (server: ServerProcess, receiver: Receiver): Promise<string> {
  const credentials = { username: `hooks_${randomBytes(4).toString('hex')}`, password: 'a webhook password' }
  await post(`${server.url}/v1/auth/signup`, credentials)
  const token = ((await (await post(`${server.url}/v1/auth/login`, credentials)).json()) as { access_token: string }).access_token
  const res = await post(`${server.url}/v1/webhooks`, { url: receiver.url, events: ['task.created'] }, token)
  if (res.status !== 201) throw new Error(`webhook: ${res.status} ${await res.text()}`)
  return token
}

/** The task ids the receiver got, once each, in arrival order, and how many deliveries each had. */
function deliveredTasks (receiver: Receiver): Map<string, number> {
  const counts = new Map<string, number>()
  for (const request of receiver.received) {
    const id = (JSON.parse(request.body) as { data: { id: string } }).data.id
    counts.set(id, (counts.get(id) ?? 0) + 1)
  }
  return counts
}

async function until (condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

tap.test('two instances, no faults: every event delivered exactly once, never twice at once', { skip }, async (t) => {
  const shared = { ...await serverDatabaseEnv(t), JWT_SECRET: randomBytes(32).toString('hex'), ...settings }
  const a = await startServer(shared)
  const b = await startServer({ ...shared, MIGRATE_ON_START: 'false' })
  t.teardown(async () => { await a.stop(); await b.stop() })
  const receiver = await startReceiver()
  t.teardown(receiver.close)
  // A little slowness, so that both instances hold attempts at once.
  receiver.answer = () => ({ status: 200, delayMs: 20 })
  const token = await hooked(a, receiver)
  const ids: string[] = []
  await Promise.all([a, b].map(async (server) => {
    for (let i = 0; i < 40; i++) ids.push(((await (await post(`${server.url}/v1/tasks`, { title: `task ${i}` }, token)).json()) as { id: string }).id)
  }))
  await until(() => deliveredTasks(receiver).size === ids.length, 30_000, `${ids.length} tasks delivered`)
  await new Promise((resolve) => setTimeout(resolve, 2000))
  const counts = deliveredTasks(receiver)
  t.same([...counts.keys()].sort(), [...ids].sort(), 'every task, and nothing else')
  t.same([...new Set(counts.values())], [1], 'each exactly once')
  t.equal(receiver.maxConcurrentPerId(), 1, 'never the same event twice at once')
})

tap.test('an instance killed mid-delivery: what it held is delivered by the next, once its lease runs out', { skip }, async (t) => {
  const env = { ...await serverDatabaseEnv(t), JWT_SECRET: randomBytes(32).toString('hex'), ...settings }
  const first = await startServer(env)
  t.teardown(async () => { await first.stop('SIGKILL') })
  const receiver = await startReceiver()
  t.teardown(receiver.close)
  // The first deliveries hang past the kill.
  receiver.answer = (_, n) => n <= 5 ? { status: 200, delayMs: 60_000 } : { status: 200 }
  const token = await hooked(first, receiver)
  const ids: string[] = []
  for (let i = 0; i < 5; i++) ids.push(((await (await post(`${first.url}/v1/tasks`, { title: `held ${i}` }, token)).json()) as { id: string }).id)
  await receiver.waitFor(5)
  t.equal(await first.stop('SIGKILL'), null, 'killed while its attempts were under way')
  const second = await startServer({ ...env, MIGRATE_ON_START: 'false' })
  t.teardown(async () => { await second.stop() })
  await until(() => receiver.received.length >= 10, 40_000, 'the held attempts made again')
  t.same([...deliveredTasks(receiver).keys()].sort(), [...ids].sort(), 'every event delivered (at least once: the receiver may have acted on the first)')
  t.equal(receiver.maxConcurrentPerId(), 1, 'the second attempt came after the first was abandoned, not beside it')
})

tap.test('PostgreSQL stopped mid-delivery: deliveries resume when it is back, none lost', { skip: clusterSkip }, async (t) => {
  const cluster = await ownCluster(t)
  const server = await startServer({ DATABASE_URL: cluster.databaseUrl, JWT_SECRET: randomBytes(32).toString('hex'), ...settings, DB_CONNECT_TIMEOUT_MS: '1000', DB_ACQUIRE_TIMEOUT_MS: '1500' })
  t.teardown(async () => { await server.stop() })
  const receiver = await startReceiver()
  t.teardown(receiver.close)
  // Answers slowly, so that the outage catches attempts under way (their outcome cannot be recorded).
  receiver.answer = () => ({ status: 200, delayMs: 500 })
  const token = await hooked(server, receiver)
  const ids: string[] = []
  for (let i = 0; i < 10; i++) ids.push(((await (await post(`${server.url}/v1/tasks`, { title: `before ${i}` }, token)).json()) as { id: string }).id)
  await receiver.waitFor(1)
  cluster.stop()
  await new Promise((resolve) => setTimeout(resolve, 3000))
  cluster.start()
  // A failure says which events are missing, how their attempts stand, and what the server logged.
  const missing = async () => {
    const absent = ids.filter((id) => !deliveredTasks(receiver).has(id))
    const attempts = await (async () => {
      const webhooks = await (await fetch(`${server.url}/v1/webhooks`, { headers: { authorization: `Bearer ${token}` } })).json() as { items: Array<{ id: string }> }
      return await fetch(`${server.url}/v1/webhooks/${webhooks.items[0]!.id}/deliveries?limit=100`, { headers: { authorization: `Bearer ${token}` } }).then(async (r) => await r.text())
    })().catch((err: unknown) => `not read (${String(err)}: has the server exited?)`)
    return `missing ${absent.join(', ')}; attempts ${attempts}; server log: ${server.output().slice(-6000)}`
  }
  await until(() => ids.every((id) => deliveredTasks(receiver).has(id)), 90_000, 'every event delivered after the outage').catch(async (err: Error) => {
    throw new Error(`${err.message}: ${await missing()}`)
  })
  t.pass('every event delivered')
  for (let i = 0; i < 3; i++) {
    const res = await post(`${server.url}/v1/tasks`, { title: `after ${i}` }, token)
    if (res.status === 201) ids.push(((await res.json()) as { id: string }).id)
  }
  await until(() => ids.every((id) => deliveredTasks(receiver).has(id)), 30_000, 'and those written after it')
  t.equal(receiver.maxConcurrentPerId(), 1, 'never twice at once')
})
