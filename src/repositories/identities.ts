import { and, asc, eq, gt, sql } from 'drizzle-orm'
import { type Database, deleteExpired } from '../db/client.js'
import { identities, oidcAuthorizations, users, type UserRow } from '../db/schema.js'
import { isUniqueViolation } from '../db/errors.js'
import { problem } from '../errors.js'
import type { Identity } from '../schemas/identities.js'
import { hashToken } from './refresh-tokens.js'

/** How long a sign-in may stay at the provider before its `state` is forgotten. */
export const AUTHORIZATION_TTL_SECONDS = 600

export type IdentityRow = typeof identities.$inferSelect
export type OidcAuthorization = Omit<typeof oidcAuthorizations.$inferSelect, 'stateHash' | 'expiresAt' | 'createdAt'>

/** The one mapper from an identities row to the API's Identity. */
export function toIdentity (row: IdentityRow): Identity {
  return { id: row.id, issuer: row.issuer, subject: row.subject, email: row.email, created_at: row.createdAt.toISOString() }
}

/**
 * Single sign-on's server side: the sign-ins waiting at the provider (keyed by the SHA-256 of
 * their `state`, each taken once) and the identities linked to accounts.
 */
export function createIdentitiesRepository (db: Database) {
  return {
    async saveAuthorization (state: string, authorization: OidcAuthorization): Promise<void> {
      await db.insert(oidcAuthorizations).values({
        ...authorization,
        stateHash: hashToken(state),
        expiresAt: sql`now() + make_interval(secs => ${AUTHORIZATION_TTL_SECONDS})`,
      })
    },

    /** Takes (deletes) the sign-in of `state`; undefined when unknown, taken or expired. */
    async takeAuthorization (state: string): Promise<OidcAuthorization | undefined> {
      const [row] = await db.delete(oidcAuthorizations)
        .where(and(eq(oidcAuthorizations.stateHash, hashToken(state)), gt(oidcAuthorizations.expiresAt, sql`now()`)))
        .returning({
          nonce: oidcAuthorizations.nonce,
          codeVerifier: oidcAuthorizations.codeVerifier,
          callbackUrl: oidcAuthorizations.callbackUrl,
          redirectUri: oidcAuthorizations.redirectUri,
          clientState: oidcAuthorizations.clientState,
          linkUserId: oidcAuthorizations.linkUserId,
        })
      return row
    },

    /** The account linked to the provider's `(iss, sub)`. */
    async findUser (issuer: string, subject: string): Promise<UserRow | undefined> {
      const [row] = await db.select({ user: users }).from(identities).innerJoin(users, eq(users.id, identities.userId))
        .where(and(eq(identities.issuer, issuer), eq(identities.subject, subject))).limit(1)
      return row?.user
    },

    /** Links `(iss, sub)` to the account; 'taken' when it is already linked to another one. */
    async link (userId: string, identity: { issuer: string, subject: string, email: string | null }): Promise<'linked' | 'taken'> {
      const [owner] = await db.select({ userId: identities.userId }).from(identities)
        .where(and(eq(identities.issuer, identity.issuer), eq(identities.subject, identity.subject))).limit(1)
      if (owner !== undefined) return owner.userId === userId ? 'linked' : 'taken'
      try {
        await db.insert(identities).values({ ...identity, userId })
        return 'linked'
      } catch (err) {
        if (isUniqueViolation(err, 'identities_issuer_subject_key')) return 'taken'
        throw err
      }
    },

    async list (userId: string): Promise<IdentityRow[]> {
      return await db.select().from(identities).where(eq(identities.userId, userId)).orderBy(asc(identities.createdAt), asc(identities.id))
    },

    /**
     * Unlinks one of the user's identities: false when it is not theirs; 409 LAST_WAY_IN when the
     * account has no password and no other identity. The user row is locked, so two unlinks at
     * once cannot each leave the other as the last.
     */
    async unlink (userId: string, id: string): Promise<boolean> {
      return await db.transaction(async (tx) => {
        const [user] = await tx.select({ passwordHash: users.passwordHash }).from(users).where(eq(users.id, userId)).for('update')
        const linked = await tx.select({ id: identities.id }).from(identities).where(eq(identities.userId, userId))
        if (user === undefined || !linked.some((row) => row.id === id)) return false
        if (user.passwordHash === null && linked.length === 1) {
          throw problem('LAST_WAY_IN', 'This identity is the account\'s only way to sign in: set a password (through a password reset) or link another identity first.')
        }
        await tx.delete(identities).where(eq(identities.id, id))
        return true
      })
    },

    purgeExpired: async (): Promise<number> => await deleteExpired(db, oidcAuthorizations, oidcAuthorizations.expiresAt),
  }
}

export type IdentitiesRepository = ReturnType<typeof createIdentitiesRepository>
