import { and, eq, lte, sql } from 'drizzle-orm'
import { type Database, deleteExpired } from '../db/client.js'
import { idempotencyKeys } from '../db/schema.js'
import { problem } from '../errors.js'

/** How long a key is remembered. */
export const IDEMPOTENCY_TTL_HOURS = 24

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

/**
 * Claims `key` for the caller inside the transaction `tx`. True when this request owns it; false
 * when a live claim exists. A concurrent claim of the same key blocks on the primary key until the
 * other transaction ends, so it never runs the work twice. An expired claim is taken over.
 */
export async function claimIdempotencyKey (tx: Database, claim: IdempotencyClaim): Promise<boolean> {
  const expiresAt = sql`now() + make_interval(hours => ${IDEMPOTENCY_TTL_HOURS})`
  const claimed = await tx.insert(idempotencyKeys)
    .values({ userId: claim.userId, key: claim.key, fingerprint: claim.fingerprint, expiresAt })
    .onConflictDoUpdate({
      target: [idempotencyKeys.userId, idempotencyKeys.key],
      set: { fingerprint: claim.fingerprint, createdAt: sql`now()`, expiresAt, responseStatus: null, responseHeaders: null, responseBody: null },
      setWhere: lte(idempotencyKeys.expiresAt, sql`now()`),
    })
    .returning({ key: idempotencyKeys.key })
  return claimed.length > 0
}

/** Stores the response of a claimed key, in the transaction that did the work. */
export async function storeIdempotentResponse (tx: Database, claim: IdempotencyClaim, response: StoredResponse): Promise<void> {
  await tx.update(idempotencyKeys)
    .set({ responseStatus: response.status, responseHeaders: response.headers, responseBody: response.body })
    .where(and(eq(idempotencyKeys.userId, claim.userId), eq(idempotencyKeys.key, claim.key)))
}

/**
 * The response to replay for a key someone else claimed: 422 when it was claimed for another
 * request, 409 while that request has no response yet.
 */
export async function storedResponseFor (tx: Database, claim: IdempotencyClaim): Promise<StoredResponse> {
  const [row] = await tx.select().from(idempotencyKeys)
    .where(and(eq(idempotencyKeys.userId, claim.userId), eq(idempotencyKeys.key, claim.key)))
  if (row === undefined || row.responseStatus === null) {
    throw problem('IDEMPOTENCY_IN_FLIGHT', 'A request with this Idempotency-Key is still being processed; retry shortly.', { headers: { 'retry-after': '1' } })
  }
  if (row.fingerprint !== claim.fingerprint) {
    throw problem('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used with a different request body; use a new key for a new request.')
  }
  return { status: row.responseStatus, headers: row.responseHeaders ?? {}, body: row.responseBody }
}

export function createIdempotencyKeysRepository (db: Database) {
  return {
    /** Deletes expired keys; returns how many. */
    purgeExpired: async (): Promise<number> => await deleteExpired(db, idempotencyKeys, idempotencyKeys.expiresAt),
  }
}

export type IdempotencyKeysRepository = ReturnType<typeof createIdempotencyKeysRepository>
