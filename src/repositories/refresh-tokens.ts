import { createHash, randomBytes, randomUUID } from 'node:crypto'
import type { Database } from '../db/client.js'
import { refreshTokens } from '../db/schema.js'

/** Refresh tokens are opaque random strings; only their SHA-256 is stored. */
export function hashToken (token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

export function createRefreshTokensRepository (db: Database, ttlSeconds: number) {
  return {
    /** Issues a token in `familyId` (a new family when omitted: one per login). */
    async issue (userId: string, familyId: string = randomUUID()): Promise<string> {
      const token = `rt_${randomBytes(32).toString('base64url')}`
      await db.insert(refreshTokens).values({
        userId,
        familyId,
        tokenHash: hashToken(token),
        expiresAt: new Date(Date.now() + ttlSeconds * 1000),
      })
      return token
    },
  }
}

export type RefreshTokensRepository = ReturnType<typeof createRefreshTokensRepository>
