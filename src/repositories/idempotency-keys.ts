import { and, eq, gt, sql } from 'drizzle-orm'
import { type Database, deleteExpired, queryRows } from '../db/client.js'
import { idempotencyKeys } from '../db/schema.js'
import { problem } from '../errors.js'

/** How long a key is remembered. */
export const IDEMPOTENCY_TTL_HOURS = 24

/**
 * The first of the two keys of the transaction-level advisory locks that mark keys in flight: a
 * space of their own, apart from the single-key lock the migrations take.
 */
const IN_FLIGHT_LOCK_SPACE = 0x1de7

/** The response to replay for a key: what the first request answered. */
export interface StoredResponse {
  status: number
  headers: Record<string, string>
  body: unknown
}

export interface IdempotencyClaim {
  userId: string
  key: string
  /** Digest of the request; the same key with another request is refused. */
  fingerprint: string
}

/** What an idempotent request answers: its own response, or the stored one of its first run. */
export interface IdempotentOutcome {
  response: StoredResponse
  replayed: boolean
}

export function createIdempotencyKeysRepository (db: Database) {
  return {
    /**
     * Runs `work` once per key: in one transaction, the key is locked, `work` runs on that
     * transaction and its response is stored with what it wrote, so both commit or neither does.
     * A key whose first request has committed answers that stored response (422 when it came with
     * another request); a key whose first request is still running answers 409
     * `IDEMPOTENCY_IN_FLIGHT` at once, rather than waiting for it. A failed request stores nothing,
     * so its key can be retried. Expired keys are taken over.
     */
    async run (claim: IdempotencyClaim, work: (tx: Database) => Promise<StoredResponse>): Promise<IdempotentOutcome> {
      return await db.transaction(async (tx) => {
        // Held until this transaction ends; a duplicate that cannot take it is in flight.
        const [lock] = await queryRows<{ locked: boolean }>(tx, sql`
          select pg_try_advisory_xact_lock(${IN_FLIGHT_LOCK_SPACE}, hashtext(${claim.userId} || ':' || ${claim.key})) as locked`)
        if (lock?.locked !== true) {
          throw problem('IDEMPOTENCY_IN_FLIGHT', 'A request with this Idempotency-Key is still being processed; retry shortly.', { headers: { 'retry-after': '1' } })
        }
        const [stored] = await tx.select().from(idempotencyKeys).where(and(
          eq(idempotencyKeys.userId, claim.userId), eq(idempotencyKeys.key, claim.key), gt(idempotencyKeys.expiresAt, sql`now()`)))
        if (stored !== undefined) {
          if (stored.fingerprint !== claim.fingerprint) {
            throw problem('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used with a different request body; use a new key for a new request.')
          }
          return { response: { status: stored.responseStatus, headers: stored.responseHeaders, body: stored.responseBody }, replayed: true }
        }
        const response = await work(tx)
        const values = {
          fingerprint: claim.fingerprint,
          responseStatus: response.status,
          responseHeaders: response.headers,
          responseBody: response.body,
          createdAt: sql`now()`,
          expiresAt: sql`now() + make_interval(hours => ${IDEMPOTENCY_TTL_HOURS})`,
        }
        // Under the lock, the only row this can meet is an expired one, which is taken over.
        await tx.insert(idempotencyKeys).values({ userId: claim.userId, key: claim.key, ...values })
          .onConflictDoUpdate({ target: [idempotencyKeys.userId, idempotencyKeys.key], set: values })
        return { response, replayed: false }
      })
    },

    /** Deletes expired keys; returns how many. */
    purgeExpired: async (): Promise<number> => await deleteExpired(db, idempotencyKeys, idempotencyKeys.expiresAt),
  }
}

export type IdempotencyKeysRepository = ReturnType<typeof createIdempotencyKeysRepository>
