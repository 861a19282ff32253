/**
 * `npm run bench:webhooks`: webhook delivery under load, on a real PostgreSQL.
 *
 * Builds and starts the service (the production bundle) on a fresh database
 * (BENCH_WEBHOOKS_DATABASE_URL, default tasks_bench_webhooks, dropped and created), with a receiver
 * in this process that answers 204 at once. Two measurements:
 * - throughput: `--webhooks` (10) webhooks get every event; `--backlog` (3000) tasks are created as
 *   fast as the server takes them, and the deliveries per second are counted from the first
 *   arrival to the last;
 * - latency: one webhook, tasks created at `--rate` per second (100) for `--duration` seconds (20);
 *   the time from each create's answer (its commit) to the delivery's arrival (p50, p99, max).
 */
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:http'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { projectRoot } from '../src/lib/project-root.js'
import { freshDatabase, percentile, startBundle } from './bench-target.js'

const { values } = parseArgs({
  options: {
    webhooks: { type: 'string', default: '10' },
    backlog: { type: 'string', default: '3000' },
    rate: { type: 'string', default: '100' },
    duration: { type: 'string', default: '20' },
  },
})
const databaseUrl = process.env.BENCH_WEBHOOKS_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tasks_bench_webhooks'



// The receiver: when each task's delivery arrived, by webhook path and task title.
const arrivals: Array<{ path: string, title: string, at: number }> = []
const receiver = createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (chunk: Buffer) => chunks.push(chunk))
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString()) as { type: string, data: { title?: string } }
    if (body.type === 'task.created') arrivals.push({ path: req.url!, title: body.data.title!, at: Date.now() })
    res.writeHead(204).end()
  })
})
receiver.listen(0, '127.0.0.1')
await once(receiver, 'listening')
const receiverPort = (receiver.address() as { port: number }).port

await freshDatabase(databaseUrl)
execFileSync('npm', ['run', '-s', 'build'], { cwd: projectRoot, stdio: 'inherit' })
const server = await startBundle(join(projectRoot, 'dist/server.mjs'), databaseUrl, { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' })
const base = server.base
try {
  const post = async (path: string, body: unknown, token?: string) => await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body),
  })
  const login = async (username: string) => {
    await post('/v1/auth/signup', { username, password: 'bench-password' })
    return ((await (await post('/v1/auth/login', { username, password: 'bench-password' })).json()) as { access_token: string }).access_token
  }
  const until = async (condition: () => boolean, timeoutMs: number) => {
    for (const deadline = Date.now() + timeoutMs; !condition() && Date.now() < deadline;) await new Promise((resolve) => setTimeout(resolve, 20))
  }

  // Throughput: a backlog for many webhooks.
  const busy = await login('throughput')
  const webhookCount = Number(values.webhooks)
  for (let i = 0; i < webhookCount; i++) await post('/v1/webhooks', { url: `http://127.0.0.1:${receiverPort}/t${i}`, events: ['task.created'] }, busy)
  const backlog = Number(values.backlog)
  const writers = Array.from({ length: 8 }, async (_, w) => {
    for (let i = w; i < backlog; i += 8) await post('/v1/tasks', { title: `backlog ${i}` }, busy)
  })
  await Promise.all(writers)
  const expected = backlog * webhookCount
  await until(() => arrivals.length >= expected, 300_000)
  const throughput = arrivals.length / ((arrivals.at(-1)!.at - arrivals[0]!.at) / 1000)
  const delivered = arrivals.length
  arrivals.length = 0

  // Latency: one webhook at a steady rate.
  const steady = await login('latency')
  await post('/v1/webhooks', { url: `http://127.0.0.1:${receiverPort}/latency`, events: ['task.created'] }, steady)
  const committed = new Map<string, number>()
  const rate = Number(values.rate)
  const total = rate * Number(values.duration)
  const started = Date.now()
  const pending: Array<Promise<void>> = []
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rate
    if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()))
    pending.push(post('/v1/tasks', { title: `steady ${i}` }, steady).then(() => { committed.set(`steady ${i}`, Date.now()) }))
  }
  await Promise.all(pending)
  await until(() => arrivals.length >= total, 60_000)
  const latencies = arrivals.map((a) => a.at - committed.get(a.title)!).sort((a, b) => a - b)

  console.log([
    '', `tasks-api on PostgreSQL, webhook delivery to a local receiver (${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB)`,
    '', '| measurement | result |', '|---|---|',
    `| throughput: ${backlog} tasks × ${webhookCount} webhooks | ${delivered} of ${expected} delivered, ${Math.round(throughput)} deliveries/s |`,
    `| latency: ${rate} creates/s for ${values.duration} s, commit to arrival | ${arrivals.length} of ${total}; p50 ${percentile(latencies, 0.5)} ms, p99 ${percentile(latencies, 0.99)} ms, max ${latencies.at(-1)} ms |`,
  ].join('\n'))
} finally {
  server.stop()
  receiver.close()
}
