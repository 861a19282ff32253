import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { ApiKeyRow } from '../../db/schema.js'
import type { AuthState } from '../../repositories/users.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** What authenticating a request reads, from memory when recently read. */
    authCache: {
      /** Role, status and password date of a user; undefined for a deleted user. */
      authState: (userId: string) => Promise<AuthState | undefined>
      /** The API key with this SHA-256, revoked and expired ones included; undefined for an unknown key. */
      apiKeyByHash: (hash: string) => Promise<ApiKeyRow | undefined>
    }
    /** Forget cached state of a user after changing their role, status or password. */
    forgetAuthState: (userId: string) => void
    /** Forget a revoked API key at once (other instances within AUTH_CACHE_TTL_MS). */
    forgetApiKey: (keyId: string) => void
  }
}

/**
 * How long a user's role/status and an API key's row are cached. It bounds how late a disabled
 * user's access tokens and keys stop working on other instances (API.md: 60 s at most); this
 * instance forgets at once.
 */
export const AUTH_CACHE_TTL_MS = 30_000
const CACHE_MAX_ENTRIES = 10_000

/** A bounded map whose entries expire; the oldest entry goes when it is full. */
export function expiringCache<V> () {
  const entries = new Map<string, { value: V, until: number }>()
  return {
    entries,
    /** The live entry for `key` (its value may itself be undefined), or undefined. */
    get (key: string, now: number): { value: V } | undefined {
      const hit = entries.get(key)
      return hit !== undefined && hit.until > now ? hit : undefined
    },
    set (key: string, value: V, until: number): void {
      if (entries.size >= CACHE_MAX_ENTRIES && !entries.has(key)) entries.delete(entries.keys().next().value!)
      entries.set(key, { value, until })
    },
  }
}

/** Rows loaded on a miss and kept for AUTH_CACHE_TTL_MS; values `keep` refuses are not cached. */
function rowCache<V> () {
  const cache = expiringCache<V>()
  return {
    entries: cache.entries,
    async get (key: string, load: () => Promise<V>, keep: (value: V) => boolean = () => true): Promise<V> {
      const now = Date.now()
      const hit = cache.get(key, now)
      if (hit !== undefined) return hit.value
      const value = await load()
      if (keep(value)) cache.set(key, value, now + AUTH_CACHE_TTL_MS)
      return value
    },
  }
}

/**
 * Caches the rows authentication reads on every request (users' auth state, API keys by hash), so
 * a request costs no query, and forgets an entry at once when this instance changes it.
 */
async function authCachePlugin (app: FastifyInstance): Promise<void> {
  // Role, status and password date of recent token subjects.
  const authStates = rowCache<AuthState | undefined>()
  // API keys by SHA-256. Unknown keys are not cached, so guessing cannot fill the cache.
  const apiKeyRows = rowCache<ApiKeyRow | undefined>()

  app.decorate('authCache', {
    authState: async (userId: string) => await authStates.get(userId, async () => await app.usersRepository.authState(userId)),
    apiKeyByHash: async (hash: string) =>
      await apiKeyRows.get(hash, async () => await app.apiKeysRepository.findByHash(hash), (found) => found !== undefined),
  })
  app.decorate('forgetAuthState', (userId: string) => { authStates.entries.delete(userId) })
  app.decorate('forgetApiKey', (keyId: string) => {
    for (const [hash, entry] of apiKeyRows.entries) if (entry.value?.id === keyId) apiKeyRows.entries.delete(hash)
  })
}

export default fp(authCachePlugin, { name: 'auth-cache', dependencies: ['repositories'] })
