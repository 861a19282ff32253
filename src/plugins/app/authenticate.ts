import type { FastifyInstance, FastifyRequest, onRequestAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { type Static, Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { Config } from '../../config.js'
import { problem } from '../../errors.js'
import { securityEvent } from '../../lib/security-events.js'
import { verifiedClientCertificate } from '../../lib/client-certificate.js'
import { hashToken } from '../../repositories/refresh-tokens.js'
import { type Scope, scopesOf } from '../../schemas/scopes.js'
import type { Role } from '../../schemas/users.js'
import { expiringCache } from './auth-cache.js'

/** Who is calling, established once per request by `authenticate`. */
export interface AuthContext {
  userId: string
  role: Role
  scopes: ReadonlySet<Scope>
  method: 'bearer' | 'api_key'
  /** The API key used, when `method` is `api_key`. */
  keyId: string | null
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller, on routes that require authentication (`config.auth`); null elsewhere. */
    auth: AuthContext | null
  }
  interface FastifyInstance {
    /** The onRequest hook that sets `request.auth` from the credentials sent, or refuses with 401. */
    authenticate: onRequestAsyncHookHandler
  }
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

const bearerChallenge = (error?: string) => ({
  'www-authenticate': error === undefined ? 'Bearer realm="tasks-api"' : `Bearer realm="tasks-api", error="${error}"`,
})
const apiKeyChallenge = { 'www-authenticate': 'ApiKey realm="tasks-api"' }

/**
 * Authentication: establishes who is calling (`request.auth`) from a bearer access token or an API
 * key, refusing (401) credentials that are missing, malformed, invalid, expired or revoked. Routes
 * get it through `config.auth` (src/plugins/app/authorize.ts).
 */
async function authenticatePlugin (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  // Behind a trusted proxy, the proxy's verification of a client certificate is what there is.
  const trustProxy = opts.config.TRUST_PROXY
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
      claims = app.accessTokens.verify(token)
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
    const state = await app.authCache.authState(claims.sub)
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
    const row = await app.authCache.apiKeyByHash(hashToken(key))
    if (row === undefined) throw refuse('unknown')
    if (row.revokedAt !== null) throw refuse('revoked', row.id)
    if (row.expiresAt !== null && row.expiresAt.getTime() <= Date.now()) throw refuse('expired', row.id)
    if (row.clientCertSha256 !== null && verifiedClientCertificate(request, trustProxy) !== row.clientCertSha256) {
      throw refuse('bound to a client certificate this connection did not present', row.id)
    }
    const state = await app.authCache.authState(row.userId)
    if (state === undefined || state.disabled) throw refuse('owner disabled or deleted', row.id)
    app.recordApiKeyUse(row.id)
    const scopes = scopesWithin(state.role, row.scopes.join(' '))
    return { userId: row.userId, role: state.role, scopes, method: 'api_key', keyId: row.id }
  }

  app.decorate('authenticate', async (request: FastifyRequest) => {
    const authorization = request.headers.authorization
    const apiKey = request.headers['x-api-key']
    if (authorization !== undefined && apiKey !== undefined) {
      throw problem('AMBIGUOUS_CREDENTIALS', 'Send one kind of credentials: either `Authorization: Bearer <token>` or `X-API-Key: <key>`, not both. ' +
        'A generated client that sets every security scheme from one token (e.g. @hey-api/openapi-ts with `auth: token`) must give the token ' +
        'to the bearer schemes only, or the key to `apiKey` only: see "Use it from code" in docs/api-guide.md.', { headers: bearerChallenge('invalid_request') })
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
  })
}

export default fp(authenticatePlugin, { name: 'authenticate', dependencies: ['jwt', 'auth-cache', 'api-key-usage'] })
