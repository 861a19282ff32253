/**
 * Runs the server as a real process, for tests where the network or the process matters: from
 * the sources, or from a bundle as the container runs it.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { projectRoot } from '../src/lib/project-root.js'
import { bundleServer } from '../scripts/bundle.js'
import { freePort } from '../scripts/free-port.js'

export interface ServerProcess {
  url: string
  child: ChildProcess
  output: () => string
  /** Sends `signal` and resolves with the exit code. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

/**
 * Node's arguments that run the server from the sources, as `npm test` compiled them into
 * `dist/tests/` (this file's own compiled code may sit in a shared chunk). `--liftoff-only` keeps V8
 * from optimising the embedded database's WebAssembly: about 1.5 s of CPU at every start, which a
 * test server's few queries never earn back. JavaScript is optimised as in production (unlike in
 * the test processes): the shutdown and outage tests put these servers under load.
 */
const fromSources = ['--liftoff-only', join(projectRoot, 'dist/tests/src/server.js')]

/**
 * Starts the server with `env` on a free port and waits until /health/ready answers 200; `args`
 * are Node's, the sources by default.
 */
export async function startServer (env: Record<string, string>, args: string[] = fromSources, timeoutMs = 90_000): Promise<ServerProcess> {
  const port = await freePort()
  const child = spawn(process.execPath, args, {
    cwd: projectRoot,
    env: { PATH: process.env.PATH, NODE_ENV: 'test', LOG_LEVEL: 'info', HOST: '127.0.0.1', PORT: String(port), MAX_EVENT_LOOP_DELAY_MS: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { output += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${output}`)
    const ok = await fetch(`${url}/health/ready`).then((r) => r.ok, () => false)
    if (ok) break
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`server not ready after ${timeoutMs} ms:\n${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return {
    url,
    child,
    output: () => output,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal)
      return await exited
    },
  }
}

/**
 * Node's arguments that run a fresh production bundle (`npm run build`'s `dist/server.mjs`), built
 * for this test under `dist/` so its external packages resolve from node_modules as in the image.
 */
export async function productionBundle (t: { teardown: (fn: () => Promise<void>) => void }): Promise<string[]> {
  const folder = join(projectRoot, 'dist', `test-bundle-${randomBytes(6).toString('hex')}`)
  t.teardown(async () => { await rm(folder, { recursive: true, force: true }) })
  const outfile = join(folder, 'server.mjs')
  await bundleServer(outfile)
  return [outfile]
}

/** Runs the server expecting it to exit by itself (e.g. on bad configuration). */
export async function runServerToExit (env: Record<string, string>): Promise<{ code: number | null, output: string }> {
  const child = spawn(process.execPath, fromSources, {
    cwd: projectRoot,
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr.on('data', (d: Buffer) => { output += d.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  return { code, output }
}
