/**
 * `npm run bench:streams`: live event streams under load, on a real PostgreSQL.
 *
 * Builds and starts the service (the production bundle, as `npm run bench`) on a fresh database
 * (BENCH_STREAMS_DATABASE_URL, default tasks_bench_streams, dropped and created), makes a project
 * shared by `--users` people (100), opens `--streams` streams (1000) spread evenly over them, then
 * creates tasks in the project at `--rate` per second (20) for `--duration` seconds (20): every
 * task reaches every stream. It reports the server's extra resident memory for the open streams
 * (VmRSS after opening them, and the peak while delivering, against before) and the time from
 * sending each create to its arrival on each stream (p50, p99, max), which includes the create's
 * own latency.
 */
import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { Agent, request } from 'node:http'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { projectRoot } from '../src/lib/project-root.js'
import { freshDatabase, percentile, startBundle } from './bench-target.js'

const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '100' },
    streams: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '20' },
    duration: { type: 'string', default: '20' },
  },
})
const users = Number(values.users)
const streamCount = Number(values.streams)
const rate = Number(values.rate)
const duration = Number(values.duration)
const databaseUrl = process.env.BENCH_STREAMS_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tasks_bench_streams'


async function rssMiB (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024
}


await freshDatabase(databaseUrl)
execFileSync('npm', ['run', '-s', 'build'], { cwd: projectRoot, stdio: 'inherit' })
const server = await startBundle(join(projectRoot, 'dist/server.mjs'), databaseUrl, { AUTH_RATE_LIMIT_MAX: '1000000000' })
const base = server.base
try {
  const post = async (path: string, body: unknown, token?: string) => await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body),
  })
  const tokens: string[] = []
  const names: string[] = []
  for (let i = 0; i < users; i++) {
    const credentials = { username: `streams${i}`, password: 'bench-password' }
    await post('/v1/auth/signup', credentials)
    tokens.push(((await (await post('/v1/auth/login', credentials)).json()) as { access_token: string }).access_token)
    names.push(credentials.username)
  }
  const project = await (await post('/v1/projects', { name: 'Everyone' }, tokens[0])).json() as { id: string }
  for (const name of names.slice(1)) await post(`/v1/projects/${project.id}/members`, { username: name, role: 'viewer' }, tokens[0])
  // Warm the paths the measurement uses, then the baseline.
  for (let i = 0; i < 200; i++) await post('/v1/tasks', { title: 'warm-up', project_id: project.id }, tokens[0])
  await new Promise((resolve) => setTimeout(resolve, 2_000))
  const before = await rssMiB(server.pid)

  const latencies: number[] = []
  let received = 0
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity })
  const opened = await Promise.all(Array.from({ length: streamCount }, async (_, i) => await new Promise<void>((resolve, reject) => {
    const req = request(`${base}/v1/events/stream`, { agent, headers: { authorization: `Bearer ${tokens[i % users]!}`, accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`stream ${i}: ${res.statusCode}`))
      res.setEncoding('utf8')
      let buffer = ''
      res.on('data', (chunk: string) => {
        buffer += chunk
        let end: number
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const frame = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const sent = /"title":"sent (\d+)"/.exec(frame)
          if (sent !== null) {
            latencies.push(Date.now() - Number(sent[1]))
            received += 1
          }
        }
      })
      resolve()
    })
    req.on('error', reject)
    req.end()
  })))
  await new Promise((resolve) => setTimeout(resolve, 3_000))
  const open = await rssMiB(server.pid)

  let peak = open
  const sampler = setInterval(() => { void rssMiB(server.pid).then((mib) => { peak = Math.max(peak, mib) }) }, 250)
  const total = rate * duration
  const started = Date.now()
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rate
    if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()))
    void post('/v1/tasks', { title: `sent ${Date.now()}`, project_id: project.id }, tokens[0])
  }
  const expected = total * opened.length
  for (let waited = 0; received < expected && waited < 10_000; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100))
  clearInterval(sampler)
  agent.destroy()

  latencies.sort((a, b) => a - b)
  console.log([
    '', `tasks-api on PostgreSQL, ${opened.length} streams over ${users} members of one project, ${rate} creates/s for ${duration} s (${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB)`,
    '', '| streams | events delivered | p50 ms | p99 ms | max ms | RSS before MiB | with streams open | peak delivering | extra (peak − before) |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    `| ${opened.length} | ${received} of ${expected} | ${percentile(latencies, 0.5)} | ${percentile(latencies, 0.99)} | ${latencies.at(-1)} | ${before.toFixed(0)} | ${open.toFixed(0)} | ${peak.toFixed(0)} | ${(peak - before).toFixed(0)} |`,
  ].join('\n'))
} finally {
  server.stop()
}
