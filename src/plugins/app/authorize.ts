import type { FastifyInstance, onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { problem } from '../../errors.js'
import { problemResponses, rateLimitHeaders, withHeaders } from '../../schemas/common.js'
import type { Scope } from '../../schemas/scopes.js'
import type { Role } from '../../schemas/users.js'
import type { AuthContext } from './authenticate.js'

/** What a route needs, declared in its options: `config: { auth: { scopes: ['tasks:read'] } }`. */
interface RouteAuth {
  scopes?: Scope[]
  role?: Role
  /** `false` refuses API keys (403): keys never manage keys or users. */
  apiKeys?: boolean
}

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth
  }
}

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

/**
 * Authorization, and its documentation. A route opts in with `config.auth`; its onRequest hooks
 * then start with authentication, the per-caller rate limit and the role and scope checks, and
 * its OpenAPI operation gets the matching security requirements (with scopes) and 401/403/429
 * responses, so what is enforced and what is documented cannot drift apart. Register it before
 * the routes: a route added earlier would go unchecked.
 */
async function authorizePlugin (app: FastifyInstance): Promise<void> {
  app.addHook('onRoute', (route) => {
    const needs = route.config?.auth
    if (needs === undefined) {
      // Public operations say so explicitly (an empty requirement) rather than by omission.
      if (route.url.startsWith('/v1/')) route.schema = { ...route.schema, security: [] }
      return
    }
    const scopes: Scope[] = [...(needs.scopes ?? []), ...(needs.role === 'admin' ? ['admin' as const] : [])]
    const keys = needs.apiKeys !== false
    // onRequest, before the body is read: an anonymous caller learns nothing about validation.
    route.onRequest = [app.authenticate, app.limitPerCaller, authorize, ...(route.onRequest === undefined ? [] : [route.onRequest].flat())]
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

export default fp(authorizePlugin, { name: 'authorize', dependencies: ['authenticate', 'caller-rate-limit'] })
