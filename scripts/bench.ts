/**
 * `npm run bench`: benchmarks this service's hot paths on a real PostgreSQL, self-contained.
 *
 * Seeds BENCH_DATABASE_URL (created when missing) with 1 000 users × 100 tasks, builds and starts the service
 * on it, logs in as bench1 and drives list, get, create and update with autocannon, then prints a
 * table and writes the figures as JSON (`--json FILE`, default bench-results.json).
 *
 * Options: --duration S (10), --warmup S (2), --connections N (32), --scenarios list,get,create,update,
 * --users N and --tasks-per-user M (1000 × 100; 10000 × 100 measures the list at 1 000 000 tasks),
 * --projects-per-user P and --members-per-project K (1 and 1: everyone in their Inbox alone; see
 * scripts/seed.ts). Scenario `deep` lists the page reached after 500 cursor steps of a user with
 * 10 100 tasks; `first` lists that user's first page, to compare it with (`list` is the first page
 * of bench1, 100 tasks). `create-shared` creates into bench1's first project other than the Inbox
 * (shared with K−1 others), to compare with `create` (into the Inbox).
 *
 * Comparing builds: `--against DIR --against-database URL` also starts another checkout's bundle
 * (built there with `npm run build`) on its own database (seeded there by a run of its own
 * `npm run bench`), and `--rounds R` runs every scenario R times on each server in turn (in the
 * opposite order every other round), so that both see the same drift of the machine; the table
 * gives medians and the ratio per scenario.
 * `--keep-data` skips seeding: the database holds what an earlier run seeded.
 */
import { execFileSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import postgres from 'postgres'
import { projectRoot } from '../src/lib/project-root.js'
import { type BenchTarget, startBundle } from './bench-target.js'

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '32' },
    scenarios: { type: 'string', default: 'list,get,create,update' },
    json: { type: 'string', default: 'bench-results.json' },
    users: { type: 'string', default: '1000' },
    'tasks-per-user': { type: 'string', default: '100' },
    'projects-per-user': { type: 'string', default: '1' },
    'members-per-project': { type: 'string', default: '1' },
    rounds: { type: 'string', default: '1' },
    against: { type: 'string' },
    'against-database': { type: 'string' },
    'keep-data': { type: 'boolean', default: false },
  },
})
const databaseUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/tasks_bench'
const duration = Number(values.duration)
const warmup = Number(values.warmup)
const connections = Number(values.connections)
const rounds = Number(values.rounds)
if (values.against !== undefined && values['against-database'] === undefined) throw new Error('--against needs --against-database: the other build has its own schema')

async function ensureDatabase (): Promise<void> {
  const url = new URL(databaseUrl)
  const name = url.pathname.slice(1)
  url.pathname = '/postgres'
  const admin = postgres(url.toString(), { max: 1, onnotice: () => {} })
  const [exists] = await admin`select 1 from pg_database where datname = ${name}`
  if (exists === undefined) await admin.unsafe(`create database "${name.replaceAll('"', '""')}"`)
  await admin.end()
}

function tsx (script: string, args: string[], env: Record<string, string>): void {
  execFileSync(process.execPath, ['--import', 'tsx', join(projectRoot, script), ...args], { env: { ...process.env, ...env }, stdio: 'inherit' })
}

interface Cell { target: string, round: number, scenario: string, requests_per_second: number, latency_ms: { p50: number, p90: number, p99: number, max: number }, non_2xx: number, errors: number }

async function run (url: string, scenario: string, token: string, taskId: string, seconds: number, deepCursor = '', projectId = ''): Promise<Cell> {
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
  const createBody = JSON.stringify({
    title: 'Benchmark task', description: 'Created by npm run bench', priority: 'high',
    due_at: '2027-01-01T09:00:00.000Z', tags: ['bench', 'load'], ...(scenario === 'create-shared' ? { project_id: projectId } : {}),
  })
  let flip = false
  const options: autocannon.Options = {
    url,
    connections,
    duration: seconds,
    requests: [
      scenario === 'list' || scenario === 'first' ? { method: 'GET', path: '/v1/tasks?limit=20', headers: auth }
        : scenario === 'deep' ? { method: 'GET', path: `/v1/tasks?limit=20&cursor=${encodeURIComponent(deepCursor)}`, headers: auth }
        : scenario === 'get' ? { method: 'GET', path: `/v1/tasks/${taskId}`, headers: auth }
          : scenario === 'create' || scenario === 'create-shared' ? { method: 'POST', path: '/v1/tasks', headers: auth, body: createBody }
            : {
                method: 'PATCH',
                path: `/v1/tasks/${taskId}`,
                headers: auth,
                setupRequest: (request) => {
                  flip = !flip
                  return { ...request, body: JSON.stringify({ completed: flip }) }
                },
              },
    ],
  }
  const result = await autocannon(options)
  return {
    target: '',
    round: 0,
    scenario,
    requests_per_second: Math.round(result.requests.average),
    latency_ms: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
    non_2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  }
}

const scenarios = values.scenarios.split(',')
const scenarioNames = ['list', 'first', 'deep', 'get', 'create', 'create-shared', 'update']
const unknownScenarios = scenarios.filter((s) => !scenarioNames.includes(s))
if (unknownScenarios.length > 0) throw new Error(`unknown scenario ${unknownScenarios.join(', ')}: use one of ${scenarioNames.join(', ')}`)

const deepUser = (scenario: string) => scenario === 'deep' || scenario === 'first'
if (!values['keep-data']) {
  await ensureDatabase()
  const projectOptions = ['--projects-per-user', values['projects-per-user'], '--members-per-project', values['members-per-project']]
  tsx('scripts/seed.ts', ['--users', values.users, '--tasks-per-user', values['tasks-per-user'], ...projectOptions, '--prefix', 'bench', '--password', 'bench-password', '--reset'], { DATABASE_URL: databaseUrl })
  if (scenarios.some(deepUser)) {
    // One user: their projects are shared with nobody else.
    tsx('scripts/seed.ts', ['--users', '1', '--tasks-per-user', '10100', '--projects-per-user', values['projects-per-user'], '--prefix', 'deep', '--password', 'bench-password', '--reset'], { DATABASE_URL: databaseUrl })
  }
}

// The production artefact, as the container runs it: the bundle with `npm start`'s V8 flags, no TypeScript loader.
execFileSync('npm', ['run', '-s', 'build'], { cwd: projectRoot, stdio: 'inherit' })

interface Target extends BenchTarget { name: string }

async function startTarget (name: string, bundle: string, database: string): Promise<Target> {
  return { name, ...await startBundle(bundle, database) }
}

/** One cell: a fresh token and task, as the shared harness does, a warm-up, then the measured run. */
async function measure (base: string, scenario: string): Promise<Cell> {
  const login = await fetch(`${base}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: deepUser(scenario) ? 'deep1' : 'bench1', password: 'bench-password' }),
  })
  const { access_token: token } = await login.json() as { access_token: string }
  const headers = { authorization: `Bearer ${token}` }
  const list = await fetch(`${base}/v1/tasks?limit=1`, { headers })
  const taskId = ((await list.json()) as { items: Array<{ id: string }> }).items[0]!.id
  let projectId = ''
  if (scenario === 'create-shared') {
    const projects = await fetch(`${base}/v1/projects?sort=created_at&limit=100`, { headers })
    const shared = ((await projects.json()) as { items: Array<{ id: string, is_inbox: boolean }> }).items.find((p) => !p.is_inbox)
    if (shared === undefined) throw new Error('create-shared needs --projects-per-user 2 or more')
    projectId = shared.id
  }
  let deepCursor = ''
  if (scenario === 'deep') {
    for (let step = 0; step < 500; step++) {
      const page = await fetch(`${base}/v1/tasks?limit=20${deepCursor === '' ? '' : `&cursor=${encodeURIComponent(deepCursor)}`}`, { headers })
      deepCursor = ((await page.json()) as { next_cursor: string }).next_cursor
    }
  }
  if (warmup > 0) await run(base, scenario, token, taskId, warmup, deepCursor, projectId)
  return await run(base, scenario, token, taskId, duration, deepCursor, projectId)
}

const median = (numbers: number[]) => {
  const sorted = [...numbers].sort((a, b) => a - b)
  return sorted.length % 2 === 1 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2
}

const targets = [await startTarget('this build', join(projectRoot, 'dist/server.mjs'), databaseUrl)]
try {
  if (values.against !== undefined) targets.push(await startTarget(values.against, join(values.against, 'dist/server.mjs'), values['against-database']!))
  const cells: Cell[] = []
  for (let round = 1; round <= rounds; round++) {
    for (const scenario of scenarios) {
      // Every other round in the opposite order: the one measured second was seen to gain.
      for (const target of round % 2 === 1 ? targets : [...targets].reverse()) cells.push({ ...await measure(target.base, scenario), target: target.name, round })
    }
  }
  const summary = (scenario: string, target: Target) => {
    const mine = cells.filter((c) => c.scenario === scenario && c.target === target.name)
    return {
      rps: median(mine.map((c) => c.requests_per_second)),
      p50: median(mine.map((c) => c.latency_ms.p50)),
      p99: median(mine.map((c) => c.latency_ms.p99)),
      max: Math.max(...mine.map((c) => c.latency_ms.max)),
      failed: mine.reduce((n, c) => n + c.non_2xx + c.errors, 0),
    }
  }
  const compared = targets.length > 1
  const rows = scenarios.flatMap((scenario) => targets.map((target) => {
    const { rps, p50, p99, max, failed } = summary(scenario, target)
    const other = compared && target === targets[0] ? summary(scenario, targets[1]!) : undefined
    const versus = !compared ? '' : other === undefined ? ' |' : ` ${(rps / other.rps).toFixed(2)} × req/s, ${(p99 / other.p99).toFixed(2)} × p99 |`
    return `| ${scenario} | ${target.name} | ${Math.round(rps)} | ${p50} | ${p99} | ${max} | ${failed} |${versus}`
  }))
  process.stdout.write([
    '', `tasks-api on PostgreSQL, ${connections} connections, ${duration} s per scenario, ${rounds} round(s), medians (${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB); start to ready ${targets.map((t) => `${t.name} ${t.readyMs} ms`).join(', ')}`,
    '', `| scenario | build | req/s | p50 ms | p99 ms | max ms | non-2xx + errors |${compared ? ' this build ÷ other |' : ''}`, `|---|---|---:|---:|---:|---:|---:|${compared ? '---|' : ''}`, ...rows, '',
  ].join('\n'))
  await writeFile(values.json, JSON.stringify({ date: new Date().toISOString(), connections, duration_s: duration, rounds, ready_ms: Object.fromEntries(targets.map((t) => [t.name, t.readyMs])), cells }, null, 2) + '\n')
  process.stdout.write(`wrote ${values.json}\n`)
  if (cells.some((c) => c.non_2xx + c.errors > 0)) process.exitCode = 3
} finally {
  for (const target of targets) target.stop()
}
