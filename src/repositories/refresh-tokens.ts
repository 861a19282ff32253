import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { and, eq, gt, isNull, sql } from 'drizzle-orm'
import { type Database, deleteExpired } from '../db/client.js'
import { refreshTokens, users } from '../db/schema.js'

/** Refresh tokens and API keys are opaque random strings; only their SHA-256 is stored. */
export function hashToken (token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

export type RotateResult =
  | { status: 'rotated', userId: string, familyId: string, token: string }
  /** A token that was already rotated came back: someone holds a copy. Its family is now revoked. */
  | { status: 'reused', userId: string, familyId: string }
  | { status: 'invalid' }

async function insertToken (db: Database, userId: string, familyId: string, expiresAt: Date): Promise<string> {
  const token = `rt_${randomBytes(32).toString('base64url')}`
  await db.insert(refreshTokens).values({ userId, familyId, tokenHash: hashToken(token), expiresAt })
  return token
}

/** Revokes every family of a user; called inside the users repository's transactions. */
export async function revokeAllRefreshTokens (db: Database, userId: string): Promise<void> {
  await db.update(refreshTokens).set({ revokedAt: sql`now()` })
    .where(and(eq(refreshTokens.userId, userId), isNull(refreshTokens.revokedAt)))
}

export function createRefreshTokensRepository (db: Database, ttlSeconds: number) {
  async function revokeFamily (tx: Database, familyId: string): Promise<void> {
    await tx.update(refreshTokens).set({ revokedAt: sql`now()` })
      .where(and(eq(refreshTokens.familyId, familyId), isNull(refreshTokens.revokedAt)))
  }

  return {
    /** Deletes tokens past their expiry (used, revoked or not: none can be presented any more); returns how many. */
    purgeExpired: async (): Promise<number> => await deleteExpired(db, refreshTokens, refreshTokens.expiresAt),

    /** Starts a new family (one per login), which expires `ttlSeconds` from now. */
    async issue (userId: string): Promise<string> {
      return await insertToken(db, userId, randomUUID(), new Date(Date.now() + ttlSeconds * 1000))
    },

    /**
     * Marks the token used and issues its successor in the same family, atomically: of two
     * concurrent refreshes with one token, one rotates and the other is a reuse. The successor
     * keeps the family's expiry, so a stolen family cannot be kept alive forever.
     */
    async rotate (token: string): Promise<RotateResult> {
      const tokenHash = hashToken(token)
      return await db.transaction(async (tx) => {
        const [current] = await tx.update(refreshTokens).set({ rotatedAt: sql`now()` }).where(and(
          eq(refreshTokens.tokenHash, tokenHash),
          isNull(refreshTokens.rotatedAt),
          isNull(refreshTokens.revokedAt),
          gt(refreshTokens.expiresAt, sql`now()`),
          sql`exists (select 1 from ${users} where ${users.id} = ${refreshTokens.userId} and not ${users.disabled})`,
        )).returning()
        if (current !== undefined) {
          const next = await insertToken(tx, current.userId, current.familyId, current.expiresAt)
          return { status: 'rotated', userId: current.userId, familyId: current.familyId, token: next }
        }
        const [known] = await tx.select().from(refreshTokens).where(eq(refreshTokens.tokenHash, tokenHash)).limit(1)
        if (known !== undefined && known.rotatedAt !== null) {
          await revokeFamily(tx, known.familyId)
          return { status: 'reused', userId: known.userId, familyId: known.familyId }
        }
        return { status: 'invalid' }
      })
    },

    /** Revokes the family `token` belongs to (logout); undefined when the token is unknown. */
    async revokeFamilyOf (token: string): Promise<{ userId: string, familyId: string } | undefined> {
      const [known] = await db.select({ userId: refreshTokens.userId, familyId: refreshTokens.familyId })
        .from(refreshTokens).where(eq(refreshTokens.tokenHash, hashToken(token))).limit(1)
      if (known !== undefined) await revokeFamily(db, known.familyId)
      return known
    },
  }
}

export type RefreshTokensRepository = ReturnType<typeof createRefreshTokensRepository>
