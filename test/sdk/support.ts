/** A real server process for the SDK and browser tests, with a database of its own. */
import { randomBytes } from 'node:crypto'
import { JWT_SECRET, type T, serverDatabaseEnv, uniqueName } from '../helper.js'
import { startServer } from '../server-process.js'

/** Limits high enough that tests making hundreds of requests never meet one; no load shedding. */
const relaxedLimits = { AUTH_RATE_LIMIT_MAX: '10000', LOGIN_FAILURES_MAX: '10000', RATE_LIMIT_MAX: '10000', MAX_EVENT_LOOP_DELAY_MS: '0' }

/** Starts the server on a free port; stopped (before its database goes) when `t` ends. */
export async function listeningServer (t: T, env: Record<string, string> = {}): Promise<string> {
  const database = await serverDatabaseEnv(t)
  const server = await startServer({ JWT_SECRET, LOG_LEVEL: 'warn', ...relaxedLimits, ...database, ...env })
  t.teardown(() => server.stop()) // teardowns run last-in first-out: the server stops before its database goes
  return server.url
}

export function newAccount (): { username: string, password: string } {
  return { username: uniqueName('sdk'), password: `pw-${randomBytes(8).toString('hex')}` }
}
