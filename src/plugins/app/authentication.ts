import { randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyRequest, onRequestAsyncHookHandler, onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { type Static, Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { Config } from '../../config.js'
import { problem } from '../../errors.js'
import { securityEvent } from '../../lib/security-events.js'
import { problemResponses, rateLimitHeaders, withHeaders } from '../../schemas/common.js'
import type { TokenPair } from '../../schemas/auth.js'
import type { Role } from '../../schemas/users.js'
import type { AuthState } from '../../repositories/users.js'
import { hashToken } from '../../repositories/refresh-tokens.js'
import type { ApiKeyRow, UserRow } from '../../db/schema.js'

export type Scope = 'tasks:read' | 'tasks:write' | 'admin'

/** Who is calling, established once per request by `authenticate`. */
export interface AuthContext {
  userId: string
  role: Role
  scopes: ReadonlySet<Scope>
  method: 'bearer' | 'api_key'
  /** The API key used, when `method` is `api_key`. */
  keyId: string | null
}

/** What a route needs, declared in its options: `config: { auth: { scopes: ['tasks:read'] } }`. */
export interface RouteAuth {
  scopes?: Scope[]
  role?: Role
  /** `false` refuses API keys (403): keys never manage keys or users. */
  apiKeys?: boolean
}

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth
  }
  interface FastifyRequest {
    auth: AuthContext | null
  }
  interface FastifyInstance {
    /** A new access token, with `refreshToken` or else a new refresh-token family (a login). */
    issueTokenPair: (user: UserRow, refreshToken?: string) => Promise<TokenPair>
    /** Forget cached state of a user after changing their role, status or password. */
    forgetAuthState: (userId: string) => void
    /** Forget a revoked API key at once (other instances within AUTH_CACHE_TTL_MS). */
    forgetApiKey: (keyId: string) => void
  }
}

export function scopesOf (role: Role): Scope[] {
  return role === 'admin' ? ['tasks:read', 'tasks:write', 'admin'] : ['tasks:read', 'tasks:write']
}

/**
 * The access token's claims, checked after the signature: a validly signed token with a claim of
 * the wrong type is still refused (401), never passed on to a query (500).
 * `pwd_at` is the subject's password-change time in milliseconds when the token was issued: a
 * token whose `pwd_at` is not the current one predates a password change. (`iat` has whole
 * seconds only, too coarse to order a login and a password change in the same second.)
 */
const AccessClaims = Type.Object({
  sub: Type.String({ pattern: '^[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}$' }),
  iat: Type.Integer(),
  exp: Type.Integer(),
  jti: Type.String(),
  role: Type.Union([Type.Literal('user'), Type.Literal('admin')]),
  scope: Type.String(),
  pwd_at: Type.Integer(),
})
const accessClaims = TypeCompiler.Compile(AccessClaims)
type AccessClaims = Static<typeof AccessClaims>

const API_KEY_FORMAT = /^tk_[A-Za-z0-9_-]{43}$/

/**
 * How long a user's role/status and an API key's row are cached. It bounds how late a disabled
 * user's access tokens and keys stop working on other instances (API.md: 60 s at most); this
 * instance forgets at once.
 */
export const AUTH_CACHE_TTL_MS = 30_000
const CACHE_MAX_ENTRIES = 10_000

const bearerChallenge = (error?: string) => ({
  'www-authenticate': error === undefined ? 'Bearer realm="tasks-api"' : `Bearer realm="tasks-api", error="${error}"`,
})
const apiKeyChallenge = { 'www-authenticate': 'ApiKey realm="tasks-api"' }

/** A bounded map whose entries expire; the oldest entry goes when it is full. */
function expiringCache<V> () {
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
 * Authentication and authorization in one place. A route opts in with `config.auth`; this plugin
 * then runs the checks before anything else, applies the per-caller rate limit and documents all
 * of it (security requirements with scopes, 401/403/429) in the OpenAPI document, so what is
 * enforced and what is documented cannot drift apart.
 */
async function authenticationPlugin (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts

  // Role, status and password date of recent token subjects, so a request costs no extra query.
  const authStates = rowCache<AuthState | undefined>()
  const authState = async (userId: string) => await authStates.get(userId, async () => await app.usersRepository.authState(userId))
  app.decorate('forgetAuthState', (userId: string) => { authStates.entries.delete(userId) })

  // API keys by SHA-256. Unknown keys are not cached, so guessing cannot fill the cache.
  const apiKeyRows = rowCache<ApiKeyRow | undefined>()
  app.decorate('forgetApiKey', (keyId: string) => {
    for (const [hash, entry] of apiKeyRows.entries) if (entry.value?.id === keyId) apiKeyRows.entries.delete(hash)
  })

  // last_used_at is collected here and written in one statement per interval, not per request.
  let keyUses = new Map<string, Date>()
  async function flushKeyUses (): Promise<void> {
    const uses = keyUses
    keyUses = new Map()
    await app.apiKeysRepository.recordUsage(uses).catch((err: unknown) => { app.log.warn({ err }, 'could not record API key usage') })
  }
  const flushTimer = setInterval(() => { void flushKeyUses() }, config.API_KEY_USAGE_FLUSH_MS).unref()
  app.addHook('onClose', async () => {
    clearInterval(flushTimer)
    await flushKeyUses()
  })

  app.decorate('issueTokenPair', async (user: UserRow, refreshToken?: string): Promise<TokenPair> => {
    const scope = scopesOf(user.role).join(' ')
    const claims = { sub: user.id, jti: randomUUID(), role: user.role, scope, pwd_at: user.passwordChangedAt.getTime() }
    return {
      access_token: app.jwt.sign(claims),
      token_type: 'Bearer',
      expires_in: config.ACCESS_TOKEN_TTL,
      refresh_token: refreshToken ?? await app.refreshTokensRepository.issue(user.id),
      scope,
    }
  })

  app.decorateRequest('auth', null)

  // The scopes of `granted` (space-separated) that `role` allows. Callers hold few distinct
  // combinations, so each set is built once (building sets per request showed in profiles).
  const scopeSets = new Map<string, ReadonlySet<Scope>>()
  function scopesWithin (role: Role, granted: string): ReadonlySet<Scope> {
    const key = `${role} ${granted}`
    let scopes = scopeSets.get(key)
    if (scopes === undefined) {
      const names = granted.split(' ')
      scopes = new Set(scopesOf(role).filter((s) => names.includes(s)))
      if (scopeSets.size < 64) scopeSets.set(key, scopes)
    }
    return scopes
  }

  // Verified access tokens until they expire, keyed by the token itself: a client sends the same
  // token for minutes, and a lookup then costs no signature check and no hashing.
  const verifiedTokens = expiringCache<AccessClaims>()
  function verifiedClaims (token: string): AccessClaims | undefined {
    const now = Date.now()
    const hit = verifiedTokens.get(token, now)
    if (hit !== undefined) return hit.value
    let claims: unknown
    try {
      claims = app.jwt.verify(token)
    } catch {
      return undefined
    }
    if (!accessClaims.Check(claims)) return undefined
    verifiedTokens.set(token, claims, claims.exp * 1000)
    return claims
  }

  async function authenticateBearer (request: FastifyRequest, token: string): Promise<AuthContext> {
    const claims = verifiedClaims(token)
    if (claims === undefined) {
      // Every verification failure (signature, algorithm, expiry, nbf, issuer, audience, claim
      // types) is the caller's: a 401, never a 500.
      throw problem('INVALID_TOKEN', 'The access token is invalid or expired.', { headers: bearerChallenge('invalid_token') })
    }
    const state = await authState(claims.sub)
    if (state === undefined || state.disabled || claims.pwd_at !== state.passwordChangedAt.getTime()) {
      securityEvent(request.log, 'auth.token_refused', {
        userId: claims.sub,
        reason: state === undefined ? 'user deleted' : state.disabled ? 'user disabled' : 'password changed',
      })
      throw problem('INVALID_TOKEN', 'The access token has been revoked.', { headers: bearerChallenge('invalid_token') })
    }
    // The token's scope can only narrow what the subject's current role allows.
    return { userId: claims.sub, role: state.role, scopes: scopesWithin(state.role, claims.scope), method: 'bearer', keyId: null }
  }

  async function authenticateApiKey (request: FastifyRequest, key: string): Promise<AuthContext> {
    const refuse = (reason: string, keyId?: string) => {
      securityEvent(request.log, 'auth.api_key_refused', { reason, ...(keyId !== undefined ? { keyId } : {}) })
      return problem('INVALID_API_KEY', 'The API key is invalid, expired or revoked.', { headers: apiKeyChallenge })
    }
    if (!API_KEY_FORMAT.test(key)) throw refuse('malformed')
    const hash = hashToken(key)
    const row = await apiKeyRows.get(hash, async () => await app.apiKeysRepository.findByHash(hash), (found) => found !== undefined)
    if (row === undefined) throw refuse('unknown')
    if (row.revokedAt !== null) throw refuse('revoked', row.id)
    if (row.expiresAt !== null && row.expiresAt.getTime() <= Date.now()) throw refuse('expired', row.id)
    const state = await authState(row.userId)
    if (state === undefined || state.disabled) throw refuse('owner disabled or deleted', row.id)
    keyUses.set(row.id, new Date())
    const scopes = scopesWithin(state.role, row.scopes.join(' '))
    return { userId: row.userId, role: state.role, scopes, method: 'api_key', keyId: row.id }
  }

  const authenticate: onRequestAsyncHookHandler = async (request) => {
    const authorization = request.headers.authorization
    const apiKey = request.headers['x-api-key']
    if (authorization !== undefined && apiKey !== undefined) {
      throw problem('AMBIGUOUS_CREDENTIALS', 'Send one kind of credentials: either `Authorization: Bearer <token>` or `X-API-Key: <key>`, not both. ' +
        'A generated client that sets every security scheme from one token (e.g. @hey-api/openapi-ts with `auth: token`) must give the token ' +
        'to the bearer schemes only, or the key to `apiKey` only: see "Use it from code" in the README.', { headers: bearerChallenge('invalid_request') })
    }
    if (typeof apiKey === 'string') {
      request.auth = await authenticateApiKey(request, apiKey)
      return
    }
    if (authorization === undefined) {
      throw problem('UNAUTHENTICATED', 'Send an `Authorization: Bearer <token>` or an `X-API-Key` header.', { headers: bearerChallenge() })
    }
    const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(authorization)
    if (match === null) {
      throw problem('INVALID_TOKEN', 'The Authorization header must be `Bearer <token>`.', { headers: bearerChallenge('invalid_request') })
    }
    request.auth = await authenticateBearer(request, match[1]!)
  }

  // One budget per caller across the whole API: per API key for keys, per user for tokens.
  const limitPerCaller = app.rateLimit({
    max: config.RATE_LIMIT_MAX,
    timeWindow: config.RATE_LIMIT_WINDOW * 1000,
    keyGenerator: (request) => request.auth!.keyId !== null ? `key:${request.auth!.keyId}` : `user:${request.auth!.userId}`,
  }) as unknown as onRequestAsyncHookHandler

  /** Why the caller may not use the route, or undefined when it may. */
  function refusal (auth: AuthContext, needs: RouteAuth): Error | undefined {
    if (auth.method === 'api_key' && needs.apiKeys === false) {
      return problem('API_KEY_NOT_ALLOWED', 'API keys cannot manage API keys or users; use an access token.')
    }
    if (needs.role !== undefined && auth.role !== needs.role) {
      return problem('FORBIDDEN', `This operation is for the ${needs.role} role.`)
    }
    const missing = (needs.scopes ?? []).filter((s) => !auth.scopes.has(s))
    if (missing.length > 0) {
      return problem('INSUFFICIENT_SCOPE', `Missing scope: ${missing.join(' ')}.`, {
        headers: { 'www-authenticate': `Bearer realm="tasks-api", error="insufficient_scope", scope="${missing.join(' ')}"` },
      })
    }
    return undefined
  }
  const authorize: onRequestHookHandler = (request, _reply, done) => {
    done(refusal(request.auth!, request.routeOptions.config.auth!))
  }

  app.addHook('onRoute', (route) => {
    const needs = route.config?.auth
    if (needs === undefined) {
      // Public operations say so explicitly (an empty requirement) rather than by omission.
      if (route.url.startsWith('/v1/')) route.schema = { ...route.schema, security: [] }
      return
    }
    const scopes = [...(needs.scopes ?? []), ...(needs.role === 'admin' ? ['admin'] : [])]
    const keys = needs.apiKeys !== false
    // onRequest, before the body is read: an anonymous caller learns nothing about validation.
    route.onRequest = [authenticate, limitPerCaller, authorize, ...(route.onRequest === undefined ? [] : [route.onRequest].flat())]
    const requirement = [
      scopes.length > 0 ? `scopes ${scopes.map((s) => `\`${s}\``).join(', ')}` : 'any authenticated caller',
      ...(needs.role !== undefined ? [`role \`${needs.role}\``] : []),
    ].join(', ')
    const description = [
      route.schema?.description,
      `**Requires:** ${requirement}. ${keys ? 'Access tokens and API keys are accepted.' : 'Access tokens only: API keys are refused (403).'}`,
    ].filter(Boolean).join('\n\n')
    route.schema = {
      ...route.schema,
      description,
      security: [{ bearerAuth: scopes }, { oauth2: scopes }, ...(keys ? [{ apiKey: scopes }] : [])],
      response: {
        // Every answer after authentication has passed the per-caller limit, so it carries its
        // headers; not a 401 (refused before the limit) nor a 414 (refused by the router).
        ...withHeaders({ ...(route.schema?.response as object | undefined), ...problemResponses(403, 429) }, rateLimitHeaders, [414]),
        ...problemResponses(401),
      },
    }
  })
}

export default fp(authenticationPlugin, { name: 'authentication', dependencies: ['jwt', 'repositories', 'rate-limit'] })
