import { randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import { problem } from '../../errors.js'
import { problemResponses } from '../../schemas/common.js'
import type { TokenPair } from '../../schemas/auth.js'
import type { Role } from '../../schemas/users.js'
import type { AuthState } from '../../repositories/users.js'
import type { UserRow } from '../../db/schema.js'

export type Scope = 'tasks:read' | 'tasks:write' | 'admin'

/** Who is calling, established once per request by `authenticate`. */
export interface AuthContext {
  userId: string
  role: Role
  scopes: ReadonlySet<Scope>
  method: 'bearer' | 'api_key'
}

/** What a route needs, declared in its options: `config: { auth: { scopes: ['tasks:read'] } }`. */
export interface RouteAuth {
  scopes?: Scope[]
  role?: Role
}

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth
  }
  interface FastifyRequest {
    auth: AuthContext | null
  }
  interface FastifyInstance {
    issueTokenPair: (user: UserRow) => Promise<TokenPair>
    /** Forget cached state of a user after changing their role, status or password. */
    forgetAuthState: (userId: string) => void
  }
}

interface AccessClaims { sub: string, iat: number, exp: number, jti: string, role: Role, scope: string }

export function scopesOf (role: Role): Scope[] {
  return role === 'admin' ? ['tasks:read', 'tasks:write', 'admin'] : ['tasks:read', 'tasks:write']
}

const bearerChallenge = (error?: string) => ({
  'www-authenticate': error === undefined ? 'Bearer realm="tasks-api"' : `Bearer realm="tasks-api", error="${error}"`,
})

/**
 * Authentication and authorization in one place. A route opts in with `config.auth`; this plugin
 * then runs the checks before anything else and documents them (security requirements, 401/403) in
 * the OpenAPI document, so what is enforced and what is documented cannot drift apart.
 */
async function authenticationPlugin (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts

  // Role, status and password date of recent token subjects, so a request costs no extra query;
  // entries live AUTH_STATE_TTL_MS, which bounds how late a disabled user's tokens stop working.
  const AUTH_STATE_TTL_MS = 30_000
  const authStates = new Map<string, { state: AuthState | undefined, until: number }>()
  async function authState (userId: string): Promise<AuthState | undefined> {
    const now = Date.now()
    const cached = authStates.get(userId)
    if (cached !== undefined && cached.until > now) return cached.state
    const state = await app.usersRepository.authState(userId)
    if (authStates.size >= 10_000) authStates.delete(authStates.keys().next().value!)
    authStates.set(userId, { state, until: now + AUTH_STATE_TTL_MS })
    return state
  }
  app.decorate('forgetAuthState', (userId: string) => { authStates.delete(userId) })

  app.decorate('issueTokenPair', async (user: UserRow): Promise<TokenPair> => {
    const claims = { sub: user.id, jti: randomUUID(), role: user.role, scope: scopesOf(user.role).join(' ') }
    const [accessToken, refreshToken] = [app.jwt.sign(claims), await app.refreshTokensRepository.issue(user.id)]
    return { access_token: accessToken, token_type: 'Bearer', expires_in: config.ACCESS_TOKEN_TTL, refresh_token: refreshToken }
  })

  app.decorateRequest('auth', null)

  async function authenticateBearer (request: FastifyRequest, token: string): Promise<AuthContext> {
    let claims: AccessClaims
    try {
      claims = app.jwt.verify<AccessClaims>(token)
    } catch {
      // Every verification failure is the caller's: a 401, never a 500.
      throw problem('INVALID_TOKEN', 'The access token is invalid or expired.', { headers: bearerChallenge('invalid_token') })
    }
    const state = await authState(claims.sub)
    if (state === undefined || state.disabled || claims.iat < Math.floor(state.passwordChangedAt.getTime() / 1000)) {
      request.log.info({ event: 'auth.token_refused', userId: claims.sub }, 'token of a missing, disabled or re-passworded user')
      throw problem('INVALID_TOKEN', 'The access token has been revoked.', { headers: bearerChallenge('invalid_token') })
    }
    return { userId: claims.sub, role: state.role, scopes: new Set(scopesOf(state.role)), method: 'bearer' }
  }

  async function authenticate (request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const header = request.headers.authorization
    if (header === undefined) {
      throw problem('UNAUTHENTICATED', 'Send an `Authorization: Bearer <token>` header.', { headers: bearerChallenge() })
    }
    const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header)
    if (match === null) {
      throw problem('INVALID_TOKEN', 'The Authorization header must be `Bearer <token>`.', { headers: bearerChallenge('invalid_request') })
    }
    request.auth = await authenticateBearer(request, match[1]!)
    const needs = request.routeOptions.config.auth!
    if (needs.role !== undefined && request.auth.role !== needs.role) {
      throw problem('FORBIDDEN', `This operation is for the ${needs.role} role.`)
    }
    const missing = (needs.scopes ?? []).filter((s) => !request.auth!.scopes.has(s))
    if (missing.length > 0) {
      throw problem('INSUFFICIENT_SCOPE', `Missing scope: ${missing.join(' ')}.`, {
        headers: { 'www-authenticate': `Bearer realm="tasks-api", error="insufficient_scope", scope="${missing.join(' ')}"` },
      })
    }
  }

  app.addHook('onRoute', (route) => {
    const needs = route.config?.auth
    if (needs === undefined) {
      // Public operations say so explicitly (an empty requirement) rather than by omission.
      if (route.url.startsWith('/v1/')) route.schema = { ...route.schema, security: [] }
      return
    }
    const scopes = [...(needs.scopes ?? []), ...(needs.role === 'admin' ? ['admin'] : [])]
    // onRequest, before the body is read: an anonymous caller learns nothing about validation.
    route.onRequest = [authenticate, ...(route.onRequest === undefined ? [] : [route.onRequest].flat())]
    route.schema = {
      ...route.schema,
      security: [{ bearerAuth: [] }, { oauth2: scopes }, { apiKey: scopes }],
      response: { ...(route.schema?.response as object | undefined), ...problemResponses(401, 403) },
    }
  })
}

export default fp(authenticationPlugin, { name: 'authentication', dependencies: ['jwt', 'repositories'] })
