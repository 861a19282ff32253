import { randomInt } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import * as oidc from 'openid-client'
import type { Config } from '../../config.js'
import type { UserRow } from '../../db/schema.js'
import { problem, ProblemError } from '../../errors.js'
import { securityEvent } from '../../lib/security-events.js'
import { inSpan, injectTraceHeaders, SpanKind, spanUrl } from '../../lib/tracing.js'

/** Where a sign-in ends, and for whom: a sign-in, or a signed-in user linking an identity. */
export interface SignOnRequest {
  /** A URL of OIDC_ALLOWED_REDIRECTS (already checked), or a path of the /app pages. */
  redirectUri: string
  clientState: string | null
  linkUserId: string | null
}

declare module 'fastify' {
  interface FastifyInstance {
    singleSignOn: {
      /** Whether OIDC_ISSUER (with its client) is set. */
      configured: boolean
      /**
       * Remembers a new sign-in (state, nonce, PKCE verifier) and answers the provider's URL to
       * send the browser to. 404 OIDC_NOT_CONFIGURED, 503 OIDC_PROVIDER_UNAVAILABLE.
       */
      begin: (request: FastifyRequest, signOn: SignOnRequest) => Promise<string>
      /**
       * The provider's redirect back: validates it, finds, makes or links the account, and answers
       * where to send the browser — the sign-in's redirect URI with `code` (or nothing, when
       * linking) or an RFC 6749 `error`, and the caller's `state`. 400 INVALID_OIDC_STATE when the
       * state is not a live one of ours, so there is no redirect URI to trust.
       */
      finish: (request: FastifyRequest, query: Record<string, string | undefined>) => Promise<string>
    }
  }
}

/** The Username pattern (src/schemas/users.ts) made of what the provider says, for a new account. */
function usernameFromClaims (claims: Record<string, unknown>): string {
  const candidates = [claims.preferred_username, typeof claims.email === 'string' ? claims.email.split('@')[0] : undefined]
  for (const candidate of candidates) {
    if (typeof candidate !== 'string') continue
    const name = candidate.replace(/[^A-Za-z0-9_.-]/g, '').replace(/^[^A-Za-z0-9]+/, '').slice(0, 32)
    if (name.length >= 3) return name
  }
  return 'user'
}

/** `uri` with these parameters added to its query. */
function withParameters (uri: string, parameters: Record<string, string | null>): string {
  const query = new URLSearchParams()
  for (const [name, value] of Object.entries(parameters)) if (value !== null) query.set(name, value)
  return `${uri}${uri.includes('?') ? '&' : '?'}${query.toString()}`
}

/**
 * Every call to the provider (discovery, its keys, the token endpoint) in a span of its own,
 * carrying the trace to the provider.
 */
const tracedFetch: oidc.CustomFetch = async (url, options) => {
  const { pathname } = new URL(url)
  return await inSpan(`oidc ${options.method} ${pathname}`, {
    kind: SpanKind.CLIENT,
    attributes: { 'http.request.method': options.method, 'url.full': spanUrl(url) },
  }, async (span) => {
    const response = await fetch(url, { ...options, headers: injectTraceHeaders({ ...options.headers }) })
    span.setAttribute('http.response.status_code', response.status)
    return response
  })
}

async function singleSignOnPlugin (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts
  const issuer = config.OIDC_ISSUER
  // Discovered at the first sign-in, not at start, so the service starts while the provider is
  // down; a failed discovery is forgotten, so the next sign-in tries again.
  let discovered: Promise<oidc.Configuration> | undefined

  async function provider (): Promise<oidc.Configuration> {
    if (issuer === undefined) throw problem('OIDC_NOT_CONFIGURED', 'This server has no OpenID provider (OIDC_ISSUER).')
    discovered ??= oidc.discovery(new URL(issuer), config.OIDC_CLIENT_ID!, config.OIDC_CLIENT_SECRET!, undefined, {
      [oidc.customFetch]: tracedFetch,
      // http:// issuers are refused in production by loadConfig; elsewhere they serve development.
      ...(issuer.startsWith('http://') ? { execute: [oidc.allowInsecureRequests] } : {}),
    })
    try {
      return await discovered
    } catch (err) {
      discovered = undefined
      app.log.warn({ err }, 'the OpenID provider\'s discovery document cannot be read')
      throw unavailable()
    }
  }

  const unavailable = () => problem('OIDC_PROVIDER_UNAVAILABLE', 'The OpenID provider cannot be reached; try again later.', { headers: { 'retry-after': '30' } })

  /** The account of a sign-in: the one linked to `(iss, sub)`, or a new one (never matched by email). */
  async function accountFor (request: FastifyRequest, claims: oidc.IDToken): Promise<UserRow> {
    const linked = await app.identitiesRepository.findUser(claims.iss, claims.sub)
    if (linked !== undefined) return linked
    const email = typeof claims.email === 'string' ? claims.email : null
    const base = usernameFromClaims(claims)
    for (let attempt = 0; ; attempt++) {
      const username = attempt === 0 ? base : `${base.slice(0, 26)}${randomInt(100_000, 1_000_000)}`
      try {
        const user = await app.usersRepository.create({
          username,
          email: email ?? undefined,
          // The provider is trusted to sign in, so also to say that it verified the address.
          emailVerified: email !== null && claims.email_verified === true,
          identity: { issuer: claims.iss, subject: claims.sub, email },
        })
        securityEvent(request.log, 'auth.signup', { userId: user.id, username: user.username, reason: 'single sign-on' })
        return user
      } catch (err) {
        if (!(err instanceof ProblemError && err.code === 'USERNAME_TAKEN') || attempt === 5) {
          // The same first sign-in finished at once in another request, which made the account.
          const raced = await app.identitiesRepository.findUser(claims.iss, claims.sub)
          if (raced !== undefined) return raced
          throw err
        }
      }
    }
  }

  app.decorate('singleSignOn', {
    configured: issuer !== undefined,

    async begin (request: FastifyRequest, signOn: SignOnRequest): Promise<string> {
      const configuration = await provider()
      const state = oidc.randomState()
      const nonce = oidc.randomNonce()
      const codeVerifier = oidc.randomPKCECodeVerifier()
      const callbackUrl = `${config.PUBLIC_URL ?? `${request.protocol}://${request.host}`}/v1/auth/oidc/callback`
      await app.identitiesRepository.saveAuthorization(state, { ...signOn, nonce, codeVerifier, callbackUrl })
      return oidc.buildAuthorizationUrl(configuration, {
        redirect_uri: callbackUrl,
        scope: 'openid email profile',
        state,
        nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
      }).href
    },

    async finish (request: FastifyRequest, query: Record<string, string | undefined>): Promise<string> {
      const configuration = await provider()
      const authorization = query.state === undefined ? undefined : await app.identitiesRepository.takeAuthorization(query.state)
      if (authorization === undefined) {
        securityEvent(request.log, 'auth.login_failed', { reason: 'single sign-on with an unknown, expired or used state' })
        throw problem('INVALID_OIDC_STATE', 'This sign-in is unknown, older than 10 minutes or already finished: start again.')
      }
      const back = (parameters: Record<string, string | null>) =>
        withParameters(authorization.redirectUri, { ...parameters, state: authorization.clientState })
      const failed = (error: string, description: string, reason: string) => {
        securityEvent(request.log, 'auth.login_failed', { reason: `single sign-on: ${reason}` })
        return back({ error, error_description: description })
      }

      const currentUrl = new URL(authorization.callbackUrl)
      for (const [name, value] of Object.entries(query)) if (value !== undefined) currentUrl.searchParams.set(name, value)
      let claims: oidc.IDToken
      try {
        // Checks the state, exchanges the code with the PKCE verifier, and validates the ID
        // token: signature, issuer, audience, expiry and nonce.
        const tokens = await oidc.authorizationCodeGrant(configuration, currentUrl, {
          expectedState: query.state,
          expectedNonce: authorization.nonce,
          pkceCodeVerifier: authorization.codeVerifier,
          idTokenExpected: true,
        })
        claims = tokens.claims()!
      } catch (err) {
        if (err instanceof oidc.AuthorizationResponseError || err instanceof oidc.ResponseBodyError) {
          return failed(err.error === 'access_denied' ? 'access_denied' : 'server_error', 'The provider refused the sign-in.', `provider answered ${err.error}`)
        }
        if (err instanceof oidc.ClientError) return failed('access_denied', 'The provider\'s answer did not validate.', err.message)
        request.log.warn({ err }, 'the OpenID provider\'s token endpoint cannot be reached')
        return failed('temporarily_unavailable', 'The provider cannot be reached; try again later.', 'provider unreachable')
      }

      if (authorization.linkUserId !== null) {
        const email = typeof claims.email === 'string' ? claims.email : null
        const linked = await app.identitiesRepository.link(authorization.linkUserId, { issuer: claims.iss, subject: claims.sub, email })
        if (linked === 'taken') return failed('access_denied', 'This identity already signs in to another account.', 'identity linked to another account')
        securityEvent(request.log, 'identity.linked', { userId: authorization.linkUserId })
        return back({})
      }
      const user = await accountFor(request, claims)
      if (user.disabled) return failed('access_denied', 'This account is disabled.', 'disabled')
      // The provider authenticated the user, with its own factors: the local second factor is
      // for password logins (docs/decisions/0032-openid-connect.md).
      securityEvent(request.log, 'auth.login_succeeded', { userId: user.id, reason: 'single sign-on' })
      return back({ code: await app.accountSecurityRepository.issueOidcLoginCode(user.id) })
    },
  })
}

export default fp(singleSignOnPlugin, { name: 'single-sign-on', dependencies: ['repositories'] })
