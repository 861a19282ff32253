/**
 * What the benchmark scripts share: a fresh database, and the service's production bundle started
 * on it as the container runs it (`npm start`'s V8 flags, no TypeScript loader).
 */
import { spawn } from 'node:child_process'
import postgres from 'postgres'
import { freePort } from './free-port.js'
import { startFlags } from './start-flags.js'

/** Drops and creates the database of `url`. */
export async function freshDatabase (url: string): Promise<void> {
  const admin = new URL(url)
  const name = admin.pathname.slice(1).replaceAll('"', '""')
  admin.pathname = '/postgres'
  const sql = postgres(admin.toString(), { max: 1, onnotice: () => {} })
  await sql.unsafe(`drop database if exists "${name}" with (force)`)
  await sql.unsafe(`create database "${name}"`)
  await sql.end()
}

export interface BenchTarget { base: string, pid: number, readyMs: number, stop: () => void }

/** The service's root secret in benchmarks: a seed that seals secrets for it must derive its keys from the same. */
export const benchJwtSecret = 'bench-secret-that-is-long-enough-0123456789'

/**
 * Starts `bundle` on `database` in production mode and waits until it is ready. The per-user and
 * per-address rate limits are raised: a benchmark is one client hammering one instance. `env` adds
 * or overrides settings.
 */
export async function startBundle (bundle: string, database: string, env: Record<string, string> = {}): Promise<BenchTarget> {
  const port = await freePort()
  const server = spawn(process.execPath, [...await startFlags(), bundle], {
    env: {
      ...process.env,
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: database,
      JWT_SECRET: benchJwtSecret,
      RATE_LIMIT_MAX: '1000000000',
      AUTH_RATE_LIMIT_MAX: '1000000000',
      ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  const base = `http://127.0.0.1:${port}`
  const startedAt = Date.now()
  while (!await fetch(`${base}/health/ready`).then((r) => r.ok, () => false)) {
    if (Date.now() - startedAt > 30_000) {
      server.kill('SIGTERM')
      throw new Error(`${bundle}: server not ready in 30 s`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { base, pid: server.pid!, readyMs: Date.now() - startedAt, stop: () => server.kill('SIGTERM') }
}

/** The `p` quantile (0 to 1) of numbers sorted ascending. */
export const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!
