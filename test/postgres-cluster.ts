/**
 * A PostgreSQL cluster of a test's own, for outages: stopping it disturbs no other test. Needs the
 * server binaries; runs with the PostgreSQL suite only.
 */
import { execFileSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { TEST_DATABASE_URL, type T } from './helper.js'
import { freePort } from '../scripts/free-port.js'

const versions = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').sort() : []
const bin = versions.length > 0 ? `/usr/lib/postgresql/${versions.at(-1)}/bin` : undefined

/** Why a test of an outage cannot run here, or false when it can. */
export const clusterSkip = TEST_DATABASE_URL === undefined
  ? 'runs with the PostgreSQL suite (TEST_DATABASE_URL)'
  : bin === undefined ? 'PostgreSQL server binaries not installed' : false

function asPostgres (command: string, args: string[]): void {
  // initdb and pg_ctl refuse to run as root.
  const runner = process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', join(bin!, command), ...args]] as const : [join(bin!, command), args] as const
  execFileSync(runner[0], [...runner[1]], { stdio: 'pipe', timeout: 60_000 })
}

export interface OwnCluster {
  /** The URL of database `tasks` on it. */
  databaseUrl: string
  /** `pg_ctl stop -m fast`: sessions are ended, as in a failover. */
  stop: () => void
  start: () => void
}

/** Starts a cluster with a database `tasks`; stopped and removed when `t` ends. */
export async function ownCluster (t: T): Promise<OwnCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'tasks-api-cluster-'))
  if (process.getuid?.() === 0) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()))
  const dataDir = join(dir, 'cluster')
  const port = await freePort()
  const pgCtl = (action: string, ...extra: string[]) => asPostgres('pg_ctl', ['-D', dataDir, '-w', '-t', '30', ...extra, action])
  const start = () => pgCtl('start', '-l', join(dir, 'log'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`)
  asPostgres('initdb', ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync'])
  start()
  t.teardown(() => {
    try { pgCtl('stop', '-m', 'immediate') } catch { /* already stopped */ }
    rmSync(dir, { recursive: true, force: true })
  })
  const admin = postgres(`postgres://postgres@127.0.0.1:${port}/postgres`, { max: 1, onnotice: () => {} })
  await admin`create database tasks`
  await admin.end()
  return { databaseUrl: `postgres://postgres@127.0.0.1:${port}/tasks`, stop: () => { pgCtl('stop', '-m', 'fast') }, start }
}
