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
 * (shared with K−1 others), to compare with `create` (into the Inbox). `events` polls the change
 * feed as a syncing client 20 changes behind does (`feed1`, alone in their P projects: caught up,
 * then 20 tasks created, then every poll from there gets those 20). `login` logs bench1 in with
 * the password; `login-mfa` logs in users with two-factor (`mfa1`..`mfa6000`), each login two
 * requests: the password, answered 401 MFA_REQUIRED (not counted as failed), then the code.
 * `--signing eddsa` starts the service with an Ed25519 key in JWT_SIGNING_KEYS instead of HS256
 * with JWT_SECRET (`hs256`). The service verifies a token once and then remembers it, so with one
 * token per cell this compares the paths as a client sees them, not one signature check with another.
 *
 * Comparing builds: `--against DIR --against-database URL` also starts another checkout's bundle
 * (built there with `npm run build`) on its own database (seeded there by a run of its own
 * `npm run bench`), and `--rounds R` runs every scenario R times on each server in turn (in the
 * opposite order every other round), so that both see the same drift of the machine; the table
 * gives medians and the ratio per scenario.
 * `--keep-data` skips seeding: the database holds what an earlier run seeded (and `login-mfa`'s
 * users have spent the steps an earlier run used: wait a minute after it). Every database is
 * vacuumed and analysed before its server starts, seeded or kept.
 */
import { execFileSync } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { generateSync } from 'otplib'
import postgres from 'postgres'
import { projectRoot } from '../src/lib/project-root.js'
import { TOTP_PERIOD_SECONDS } from '../src/lib/two-factor.js'
import { type BenchTarget, benchJwtSecret, startBundle } from './bench-target.js'

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
    signing: { type: 'string', default: 'hs256' },
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
if (values.signing !== 'hs256' && values.signing !== 'eddsa') throw new Error('--signing must be hs256 or eddsa')
const signingName = values.signing === 'eddsa' ? 'EdDSA' : 'HS256'
// A fresh Ed25519 key: the first (and only) key of the set signs, and verification picks it by kid.
const serverEnv: Record<string, string> = values.signing === 'eddsa'
  ? { JWT_SIGNING_KEYS: JSON.stringify({ keys: [{ ...generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }), kid: 'bench' }] }) }
  : {}
// The two-factor users and their one secret. Each takes one new step every 30 s, so 6 000 users
// allow 200 logins/s sustained; argon2 allowed under 100 on 2 cores.
const mfaUsers = 6000
const totpSecret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'

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

/** What a scenario's requests need, prepared by `measure` before its runs. */
interface Fixture { token: string, taskId: string, deepCursor: string, projectId: string, feedAfter: string, nextMfaLogin: () => { username: string, code: string } }

const json = { 'content-type': 'application/json' }
const createBody = (projectId?: string) => JSON.stringify({
  title: 'Benchmark task', description: 'Created by npm run bench', priority: 'high',
  due_at: '2027-01-01T09:00:00.000Z', tags: ['bench', 'load'], ...(projectId === undefined ? {} : { project_id: projectId }),
})

/** The requests of `scenario`; `answers.mfaRequired` counts login-mfa's first answers, which are the flow, not failures. */
function requestsOf (scenario: string, fixture: Fixture, answers: { mfaRequired: number }): autocannon.Request[] {
  const auth = { authorization: `Bearer ${fixture.token}`, ...json }
  switch (scenario) {
    case 'list':
    case 'first':
      return [{ method: 'GET', path: '/v1/tasks?limit=20', headers: auth }]
    case 'deep':
      return [{ method: 'GET', path: `/v1/tasks?limit=20&cursor=${encodeURIComponent(fixture.deepCursor)}`, headers: auth }]
    case 'get':
      return [{ method: 'GET', path: `/v1/tasks/${fixture.taskId}`, headers: auth }]
    case 'create':
      return [{ method: 'POST', path: '/v1/tasks', headers: auth, body: createBody() }]
    case 'create-shared':
      return [{ method: 'POST', path: '/v1/tasks', headers: auth, body: createBody(fixture.projectId) }]
    case 'events':
      return [{ method: 'GET', path: `/v1/events?after=${encodeURIComponent(fixture.feedAfter)}`, headers: auth }]
    case 'login':
      return [{ method: 'POST', path: '/v1/auth/login', headers: json, body: JSON.stringify({ username: 'bench1', password: 'bench-password' }) }]
    case 'login-mfa':
      return [
        {
          method: 'POST',
          path: '/v1/auth/login',
          headers: json,
          setupRequest: (request, context: { code?: string }) => {
            const { username, code } = fixture.nextMfaLogin()
            context.code = code
            return { ...request, body: JSON.stringify({ username, password: 'bench-password' }) }
          },
          onResponse: (status, body, context: { mfaToken?: string }) => {
            context.mfaToken = status === 401 ? (JSON.parse(body) as { mfa_token?: string }).mfa_token : undefined
            if (context.mfaToken !== undefined) answers.mfaRequired++
          },
        },
        {
          method: 'POST',
          path: '/v1/auth/login/mfa',
          headers: json,
          setupRequest: (request, context: { code?: string, mfaToken?: string }) => ({ ...request, body: JSON.stringify({ mfa_token: context.mfaToken, code: context.code }) }),
        },
      ]
    default: {
      let flip = false
      return [{
        method: 'PATCH',
        path: `/v1/tasks/${fixture.taskId}`,
        headers: auth,
        setupRequest: (request) => {
          flip = !flip
          return { ...request, body: JSON.stringify({ completed: flip }) }
        },
      }]
    }
  }
}

async function run (url: string, scenario: string, seconds: number, fixture: Fixture): Promise<Cell> {
  const answers = { mfaRequired: 0 }
  const result = await autocannon({ url, connections, duration: seconds, requests: requestsOf(scenario, fixture, answers) })
  return {
    target: '',
    round: 0,
    scenario,
    requests_per_second: Math.round(result.requests.average),
    latency_ms: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
    non_2xx: result.non2xx - answers.mfaRequired,
    errors: result.errors + result.timeouts,
  }
}

const scenarios = values.scenarios.split(',')
const scenarioNames = ['list', 'first', 'deep', 'get', 'create', 'create-shared', 'update', 'events', 'login', 'login-mfa']
const unknownScenarios = scenarios.filter((s) => !scenarioNames.includes(s))
if (unknownScenarios.length > 0) throw new Error(`unknown scenario ${unknownScenarios.join(', ')}: use one of ${scenarioNames.join(', ')}`)

const deepUser = (scenario: string) => scenario === 'deep' || scenario === 'first'
const userOf = (scenario: string) => deepUser(scenario) ? 'deep1' : scenario === 'events' ? 'feed1' : 'bench1'
if (!values['keep-data']) {
  await ensureDatabase()
  const projectOptions = ['--projects-per-user', values['projects-per-user'], '--members-per-project', values['members-per-project']]
  const seed = (args: string[]) => tsx('scripts/seed.ts', [...args, '--password', 'bench-password', '--reset'], { DATABASE_URL: databaseUrl, JWT_SECRET: benchJwtSecret })
  seed(['--users', values.users, '--tasks-per-user', values['tasks-per-user'], ...projectOptions, '--prefix', 'bench'])
  // One user each: their projects are shared with nobody else.
  if (scenarios.some(deepUser)) seed(['--users', '1', '--tasks-per-user', '10100', '--projects-per-user', values['projects-per-user'], '--prefix', 'deep'])
  // Its feed holds only what the events cells make, so catching up stays short.
  if (scenarios.includes('events')) seed(['--users', '1', '--tasks-per-user', '100', '--projects-per-user', values['projects-per-user'], '--prefix', 'feed'])
  if (scenarios.includes('login-mfa')) seed(['--users', String(mfaUsers), '--tasks-per-user', '0', '--mfa-users', String(mfaUsers), '--totp-secret', totpSecret, '--prefix', 'mfa'])
}

// The production artefact, as the container runs it: the bundle with `npm start`'s V8 flags, no TypeScript loader.
execFileSync('npm', ['run', '-s', 'build'], { cwd: projectRoot, stdio: 'inherit' })

interface Target extends BenchTarget { name: string, nextMfaLogin: Fixture['nextMfaLogin'] }

/**
 * The next two-factor login on one server: the next user in turn, with the code of the first step
 * after the last one they used (a step is accepted once per user, in increasing order) and not before
 * this one (client and server may straddle a step's edge). Past the next step the server refuses
 * the code: the login fails and shows in the table.
 */
function mfaLogins (): Fixture['nextMfaLogin'] {
  const lastSteps = new Array<number>(mfaUsers).fill(0)
  let next = 0
  return () => {
    const user = next
    next = (next + 1) % mfaUsers
    const step = Math.max(lastSteps[user]! + 1, Math.floor(Date.now() / 1000 / TOTP_PERIOD_SECONDS))
    lastSteps[user] = step
    return { username: `mfa${user + 1}`, code: generateSync({ secret: totpSecret, epoch: step * TOTP_PERIOD_SECONDS }) }
  }
}

/**
 * Vacuums and analyses `database` before its server starts. Left to autovacuum, the work an earlier
 * run or the seed left behind lands in the middle of some cells and not others, and reads stay off
 * their index-only plans until the visibility map is set (docs/performance.md, "Reproducing it").
 */
async function settle (database: string): Promise<void> {
  const sql = postgres(database, { max: 1, onnotice: () => {} })
  await sql.unsafe('vacuum (analyze)')
  await sql.end()
}

async function startTarget (name: string, bundle: string, database: string): Promise<Target> {
  await settle(database)
  return { name, nextMfaLogin: mfaLogins(), ...await startBundle(bundle, database, serverEnv) }
}

/** One cell: a fresh token and task, as the shared harness does, a warm-up, then the measured run. */
async function measure (target: Target, scenario: string): Promise<Cell> {
  const base = target.base
  const login = await fetch(`${base}/v1/auth/login`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ username: userOf(scenario), password: 'bench-password' }),
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
  let feedAfter = ''
  if (scenario === 'events') {
    const poll = async () => (await (await fetch(`${base}/v1/events?limit=500${feedAfter === '' ? '' : `&after=${encodeURIComponent(feedAfter)}`}`, { headers })).json()) as { items: unknown[], next_after: string }
    let page
    do {
      page = await poll()
      feedAfter = page.next_after
    } while (page.items.length === 500)
    for (let i = 0; i < 20; i++) await fetch(`${base}/v1/tasks`, { method: 'POST', headers: { ...headers, ...json }, body: createBody() })
    const behind = (await poll()).items.length
    if (behind !== 20) throw new Error(`events: the feed shows ${behind} of the 20 tasks just created`)
  }
  const fixture = { token, taskId, deepCursor, projectId, feedAfter, nextMfaLogin: target.nextMfaLogin }
  if (warmup > 0) await run(base, scenario, warmup, fixture)
  return await run(base, scenario, duration, fixture)
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
      for (const target of round % 2 === 1 ? targets : [...targets].reverse()) cells.push({ ...await measure(target, scenario), target: target.name, round })
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
    '', `tasks-api on PostgreSQL, ${signingName} tokens, ${connections} connections, ${duration} s per scenario, ${rounds} round(s), medians (${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB); start to ready ${targets.map((t) => `${t.name} ${t.readyMs} ms`).join(', ')}`,
    '', `| scenario | build | req/s | p50 ms | p99 ms | max ms | non-2xx + errors |${compared ? ' this build ÷ other |' : ''}`, `|---|---|---:|---:|---:|---:|---:|${compared ? '---|' : ''}`, ...rows, '',
  ].join('\n'))
  await writeFile(values.json, JSON.stringify({ date: new Date().toISOString(), signing: signingName, connections, duration_s: duration, rounds, ready_ms: Object.fromEntries(targets.map((t) => [t.name, t.readyMs])), cells }, null, 2) + '\n')
  process.stdout.write(`wrote ${values.json}\n`)
  if (cells.some((c) => c.non_2xx + c.errors > 0)) process.exitCode = 3
} finally {
  for (const target of targets) target.stop()
}
