import { randomBytes } from 'node:crypto'
import { and, desc, eq, isNull, sql } from 'drizzle-orm'
import type { Database } from '../db/client.js'
import { apiKeys, type ApiKeyRow } from '../db/schema.js'
import type { ApiKey, ApiKeyScope } from '../schemas/api-keys.js'
import { hashToken } from './refresh-tokens.js'
import { normaliseFingerprint } from '../lib/client-certificate.js'

/** The one mapper from an api_keys row to the API's ApiKey: the hash stays behind. */
export function toApiKey (row: ApiKeyRow): ApiKey {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    scopes: row.scopes as ApiKeyScope[],
    expires_at: row.expiresAt?.toISOString() ?? null,
    last_used_at: row.lastUsedAt?.toISOString() ?? null,
    created_at: row.createdAt.toISOString(),
    client_cert_sha256: row.clientCertSha256,
  }
}

/** `tk_` makes a leaked key recognisable (secret scanners, logs); 32 random bytes are 256 bits. */
const KEY_PREFIX = 'tk_'

export function createApiKeysRepository (db: Database) {
  return {
    /** Returns the row and the key itself, which exists nowhere else after this call. */
    async create (input: { userId: string, name: string, scopes: ApiKeyScope[], expiresAt: Date | null, clientCertSha256?: string | null }): Promise<{ row: ApiKeyRow, key: string }> {
      const key = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`
      const [row] = await db.insert(apiKeys).values({
        userId: input.userId,
        name: input.name,
        prefix: key.slice(0, KEY_PREFIX.length + 8),
        keyHash: hashToken(key),
        scopes: input.scopes,
        expiresAt: input.expiresAt,
        clientCertSha256: input.clientCertSha256 === undefined || input.clientCertSha256 === null ? null : normaliseFingerprint(input.clientCertSha256),
      }).returning()
      return { row: row!, key }
    },

    async listActive (userId: string): Promise<ApiKeyRow[]> {
      return await db.select().from(apiKeys)
        .where(and(eq(apiKeys.userId, userId), isNull(apiKeys.revokedAt)))
        .orderBy(desc(apiKeys.createdAt), desc(apiKeys.id))
    },

    /** Revokes one of the user's keys; false when they have no such active key. */
    async revoke (userId: string, id: string): Promise<boolean> {
      const rows = await db.update(apiKeys).set({ revokedAt: sql`now()` })
        .where(and(eq(apiKeys.id, id), eq(apiKeys.userId, userId), isNull(apiKeys.revokedAt)))
        .returning({ id: apiKeys.id })
      return rows.length === 1
    },

    /**
     * The key with this SHA-256. Looking up by the digest of a 256-bit secret is the constant-time
     * comparison here: a caller cannot steer which digest bytes an index comparison meets, so
     * timing reveals nothing about stored keys.
     */
    async findByHash (keyHash: string): Promise<ApiKeyRow | undefined> {
      const [row] = await db.select().from(apiKeys).where(eq(apiKeys.keyHash, keyHash)).limit(1)
      return row
    },

    /** Writes many keys' last use in one statement; never moves a timestamp backwards. */
    async recordUsage (uses: ReadonlyMap<string, Date>): Promise<void> {
      if (uses.size === 0) return
      const values = sql.join([...uses].map(([id, at]) => sql`(${id}::uuid, ${at.toISOString()}::timestamptz)`), sql`, `)
      await db.execute(sql`update ${apiKeys} set last_used_at = v.at from (values ${values}) as v(id, at)
        where ${apiKeys.id} = v.id and (${apiKeys.lastUsedAt} is null or ${apiKeys.lastUsedAt} < v.at)`)
    },
  }
}

export type ApiKeysRepository = ReturnType<typeof createApiKeysRepository>
