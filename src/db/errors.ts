/** postgres.js and PGlite report failures differently, and Drizzle wraps both in `cause`. */
function* chain (error: unknown): Generator<{ code?: unknown, routine?: unknown, constraint_name?: unknown, constraint?: unknown }> {
  let current = error
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    yield current as { code?: unknown }
    current = (current as { cause?: unknown }).cause
  }
}

const unavailableCodes = new Set([
  // Node sockets and postgres.js's own connection errors.
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN',
  'CONNECT_TIMEOUT', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED',
  // PostgreSQL SQLSTATEs: connection exceptions, too many connections, shutting down, timeouts,
  // sessions ended by the server, a standby refusing writes during a failover.
  '08000', '08001', '08003', '08004', '08006', '53300', '57P01', '57P02', '57P03', '57P04', '57P05', '57014', '25006',
  // Refused at connection: no such database, or the credentials (a configuration or a rotation).
  '3D000', '28000', '28P01',
])

/** True when the error means "the database cannot answer now", which is a 503, not a bug. */
export function isDatabaseUnavailable (error: unknown): boolean {
  for (const e of chain(error)) {
    if (typeof e.code === 'string' && unavailableCodes.has(e.code)) return true
    // A database not accepting connections (ALLOW_CONNECTIONS false, or being dropped): a code
    // that other statements share, so only when the server raised it while opening the session.
    if (e.code === '55000' && e.routine === 'CheckMyDatabase') return true
    // PGlite after close() (shutdown) has no code, only this message.
    if (e instanceof Error && e.message === 'PGlite is closed') return true
  }
  return false
}

/** True for a unique-constraint violation, optionally of the named index or constraint. */
export function isUniqueViolation (error: unknown, constraint?: string): boolean {
  for (const e of chain(error)) {
    if (e.code === '23505') {
      return constraint === undefined || e.constraint_name === constraint || e.constraint === constraint
    }
  }
  return false
}

/**
 * True when the database aborted a transaction to resolve a conflict with another (a deadlock, or a
 * serialization failure): the same request can succeed when retried.
 */
export function isTransientConflict (error: unknown): boolean {
  for (const e of chain(error)) {
    if (e.code === '40P01' || e.code === '40001') return true
  }
  return false
}
