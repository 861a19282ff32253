import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import formbody from '@fastify/formbody'
import { Type } from '@sinclair/typebox'
import { allowedRedirects, type Config } from '../../config.js'
import { problem } from '../../errors.js'
import { assertPasswordPolicy, hashPassword } from '../../lib/passwords.js'
import { securityEvent } from '../../lib/security-events.js'
import { toUser } from '../../repositories/users.js'
import { LoginRequest, RefreshTokenRequest, SignupRequest, TokenPair, TokenRequest } from '../../schemas/auth.js'
import { EmailVerification, MfaLogin, PasswordForgotten, PasswordReset } from '../../schemas/account-security.js'
import type { UserRow } from '../../db/schema.js'
import { jsonResponse, noContent, problemResponses, redirectResponse } from '../../schemas/common.js'
import { OidcAuthorizeQuery, OidcCallbackQuery } from '../../schemas/identities.js'
import { User } from '../../schemas/users.js'
import type { Problem } from '../../schemas/common.js'
import { scopeNames } from '../../schemas/scopes.js'
import { RESETS_PER_EMAIL_PER_HOUR } from '../../plugins/app/account-mail.js'

const KNOWN_SCOPES = new Set<string>(scopeNames)

const MFA_GRANT_REFUSAL = 'This account uses two-factor authentication, which the password grant cannot carry: log in with POST /v1/auth/login and POST /v1/auth/login/mfa, then use (or paste into /docs) the access token.'

/** RFC 6749 §5.2 `error` for a token-endpoint failure that did not name one itself. */
function oauthErrorFor (status: number): string {
  if (status === 429 || status === 503) return 'temporarily_unavailable'
  if (status >= 500) return 'server_error'
  return 'invalid_request'
}

const authRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, opts) => {
  const { config } = opts
  // Strict per-IP limits on the unauthenticated entry points (password guessing, signup spam).
  const perIp = { max: config.AUTH_RATE_LIMIT_MAX, timeWindow: config.AUTH_RATE_LIMIT_WINDOW * 1000 }

  /** The token pair, or for an account with two-factor on the 401 that starts its second step. */
  async function logInOrAskForSecondFactor (user: UserRow): Promise<TokenPair> {
    if (!user.mfaEnabled) return await app.issueTokenPair(user)
    const mfaToken = await app.accountSecurityRepository.issueMfaLogin(user.id)
    throw problem('MFA_REQUIRED', 'The password is right; this account also needs a code: send it with the mfa_token to POST /v1/auth/login/mfa within 5 minutes.', {
      mfa_token: mfaToken,
      headers: { 'www-authenticate': 'Bearer realm="tasks-api"' },
    })
  }

  /** Rotates a refresh token into a new pair; undefined when the token is not (or no longer) good. */
  async function rotate (request: FastifyRequest, refreshToken: string): Promise<TokenPair | undefined> {
    const result = await app.refreshTokensRepository.rotate(refreshToken)
    if (result.status === 'reused') {
      securityEvent(request.log, 'auth.refresh_reused', { userId: result.userId, familyId: result.familyId, reason: 'rotated token presented again; family revoked' })
      return undefined
    }
    if (result.status === 'invalid') return undefined
    const user = await app.usersRepository.findById(result.userId)
    if (user === undefined) return undefined
    securityEvent(request.log, 'auth.refresh_rotated', { userId: user.id, familyId: result.familyId })
    return await app.issueTokenPair(user, result.token)
  }

  app.post('/signup', {
    config: { rateLimit: perIp },
    schema: {
      operationId: 'signUp',
      summary: 'Create an account',
      description: 'Creates a user with role `user`. The password must be 8 to 128 characters and differ from the username.',
      tags: ['auth'],
      body: Type.Ref(SignupRequest),
      response: { 201: jsonResponse('The account was created; `Location` is its URL.', Type.Ref(User), 'Location'), ...problemResponses(400, 409, 413, 415, 429, 500, 503) },
    },
  }, async (request, reply) => {
    const { username, password, email } = request.body as SignupRequest
    assertPasswordPolicy(password, username, '/password')
    const user = await app.usersRepository.create({ username, email, passwordHash: await hashPassword(password) })
    securityEvent(request.log, 'auth.signup', { userId: user.id, username: user.username })
    return reply.code(201).header('location', `/v1/users/${user.id}`).send(toUser(user))
  })

  app.post('/login', {
    config: { rateLimit: perIp },
    schema: {
      operationId: 'logIn',
      summary: 'Log in with username and password',
      description: 'Returns an access token and a refresh token. An unknown user and a wrong password get the same 401. ' +
        `After ${config.LOGIN_FAILURES_MAX} failures for one username, further attempts get 429 until the window passes. ` +
        'With two-factor on, the right password gets 401 `MFA_REQUIRED` with an `mfa_token` instead: finish with `POST /v1/auth/login/mfa`.',
      tags: ['auth'],
      body: Type.Ref(LoginRequest),
      response: { 200: jsonResponse('You are logged in: a new access token and refresh token.', Type.Ref(TokenPair)), ...problemResponses(400, 401, 413, 415, 429, 500, 503) },
    },
  }, async (request) => {
    const { username, password } = request.body as LoginRequest
    const user = await app.checkCredentials(request, username, password, 'api')
    if (user === undefined) {
      throw problem('INVALID_CREDENTIALS', 'The username or password is wrong.', { headers: { 'www-authenticate': 'Bearer realm="tasks-api"' } })
    }
    return await logInOrAskForSecondFactor(user)
  })

  app.post('/login/mfa', {
    config: { rateLimit: perIp },
    schema: {
      operationId: 'logInWithSecondFactor',
      summary: 'Finish a two-factor login with a code or a recovery code',
      description: 'The second step after `POST /v1/auth/login` answered `MFA_REQUIRED`: its `mfa_token` with the code your authenticator app shows ' +
        '(accepted one 30 s step either side, each code once) or one of your recovery codes (each once). ' +
        'A wrong one is 401 `INVALID_MFA_CODE` and counts as a failed login of the username; the 5th wrong one spends the `mfa_token` (401 `INVALID_MFA_TOKEN`): log in again.',
      tags: ['auth'],
      body: Type.Ref(MfaLogin),
      response: { 200: jsonResponse('You are logged in: a new access token and refresh token.', Type.Ref(TokenPair)), ...problemResponses(400, 401, 413, 415, 429, 500, 503) },
    },
  }, async (request) => {
    const body = request.body as MfaLogin
    const factor = 'code' in body ? { code: body.code } : { recoveryCode: body.recovery_code }
    return await app.issueTokenPair(await app.completeSecondFactor(request, body.mfa_token, factor, 'api'))
  })

  app.post('/email/verify', {
    config: { rateLimit: perIp },
    schema: {
      operationId: 'verifyEmail',
      summary: 'Confirm an email address with the token from its mail',
      description: 'Marks the address the token was mailed to as verified, if it is still the account\'s. The token is single use and lasts 24 hours; ' +
        'an unknown, used or expired one (or one for an address the account no longer has) is 400 `INVALID_EMAIL_TOKEN`. Needs no credentials: the token is the proof.',
      tags: ['auth'],
      body: Type.Ref(EmailVerification),
      response: { 204: noContent('The address is verified.'), ...problemResponses(400, 413, 415, 429, 500, 503) },
    },
  }, async (request, reply) => {
    const userId = await app.accountSecurityRepository.verifyEmail((request.body as EmailVerification).token)
    if (userId === undefined) throw problem('INVALID_EMAIL_TOKEN', 'This verification link is unknown, used or expired, or the account\'s address has changed since: ask for a new one.')
    securityEvent(request.log, 'email.verified', { userId })
    return reply.code(204).send(null)
  })

  app.post('/password/forgot', {
    config: { rateLimit: perIp },
    schema: {
      operationId: 'forgotPassword',
      summary: 'Mail a password reset link',
      description: 'If an enabled account has this address, verified, a reset token (single use, 1 hour) is mailed to it. ' +
        'The answer is 202 either way, and the request does the same work either way, so it says nothing about who has an account; ' +
        'an unverified address gets nothing. ' +
        `Limited per client address (like login) and to ${RESETS_PER_EMAIL_PER_HOUR} requests per address per hour (429). ` +
        '503 `MAIL_UNAVAILABLE` when the server has no way to send mail.',
      tags: ['auth'],
      body: Type.Ref(PasswordForgotten),
      response: { 202: noContent('Accepted: if an account has this verified address, a reset link is on its way.'), ...problemResponses(400, 413, 415, 429, 500, 503) },
    },
  }, async (request, reply) => {
    await app.sendPasswordResets(request, (request.body as PasswordForgotten).email)
    return reply.code(202).send(null)
  })

  app.post('/password/reset', {
    config: { rateLimit: perIp },
    schema: {
      operationId: 'resetPassword',
      summary: 'Set a new password with the token from a reset mail',
      description: 'Sets the password and ends every earlier sign-in, as a password change does: every refresh token and web session is revoked, ' +
        'and access tokens issued before now are refused. The token is single use and lasts 1 hour; using it spends every other reset token of the account. ' +
        'An unknown, used or expired token is 400 `INVALID_RESET_TOKEN`. Two-factor, when on, stays on.',
      tags: ['auth'],
      body: Type.Ref(PasswordReset),
      response: { 204: noContent('The password is set: log in with it.'), ...problemResponses(400, 413, 415, 429, 500, 503) },
    },
  }, async (request, reply) => {
    const { token, new_password: password } = request.body as PasswordReset
    const invalid = () => problem('INVALID_RESET_TOKEN', 'This reset link is unknown, used or expired: ask for a new one.')
    const account = await app.accountSecurityRepository.liveTokenAccount('password_reset', token)
    if (account === undefined) throw invalid()
    assertPasswordPolicy(password, account.username, '/new_password')
    const userId = await app.accountSecurityRepository.resetPassword(token, await hashPassword(password))
    if (userId === undefined) throw invalid()
    app.forgetAuthState(userId)
    securityEvent(request.log, 'password.reset', { userId })
    return reply.code(204).send(null)
  })

  const redirects = new Set(allowedRedirects(config))

  app.get('/oidc/authorize', {
    config: { rateLimit: perIp },
    schema: {
      operationId: 'startSingleSignOn',
      summary: 'Sign in with the OpenID provider',
      description: 'Open this in the user\'s browser: it redirects to the OpenID provider (authorization code flow with PKCE, `state` and `nonce`, kept by the server, ' +
        'so your client need not keep cookies). After the provider, the browser comes back to `redirect_uri` with a one-time `code` ' +
        '(exchange it within 60 s at `POST /v1/auth/token` with `grant_type=authorization_code`) and your `state`, or with an RFC 6749 `error` ' +
        '(`access_denied`, `server_error`, `temporarily_unavailable`) and `error_description`. ' +
        'The first sign-in of a provider\'s user makes an account, linked to their `(iss, sub)` (never to an account with the same email); ' +
        'the account has no password and no local second factor applies. `redirect_uri` is required and must be exactly one of `OIDC_ALLOWED_REDIRECTS` (400 `REDIRECT_URI_NOT_ALLOWED`). ' +
        '404 `OIDC_NOT_CONFIGURED` on a server without a provider; 503 `OIDC_PROVIDER_UNAVAILABLE` when the provider cannot be reached.',
      tags: ['auth'],
      querystring: OidcAuthorizeQuery,
      response: { 302: redirectResponse('To the OpenID provider.', 'The provider\'s authorization URL.'), ...problemResponses(400, 404, 429, 500, 503) },
    },
  }, async (request, reply) => {
    const { redirect_uri: redirectUri, state } = request.query as OidcAuthorizeQuery
    if (!app.singleSignOn.configured) throw problem('OIDC_NOT_CONFIGURED', 'This server has no OpenID provider (OIDC_ISSUER).')
    if (redirectUri === undefined || !redirects.has(redirectUri)) {
      throw problem('REDIRECT_URI_NOT_ALLOWED', 'redirect_uri is required and must be exactly one of the server\'s OIDC_ALLOWED_REDIRECTS.', {
        errors: [{ in: 'query', path: '/redirect_uri', message: 'must be one of the allowed redirect URIs' }],
      })
    }
    return reply.redirect(await app.singleSignOn.begin(request, { redirectUri, clientState: state ?? null, linkUserId: null }), 302)
  })

  app.get('/oidc/callback', {
    config: { rateLimit: perIp },
    schema: {
      operationId: 'finishSingleSignOn',
      summary: 'Where the OpenID provider sends the browser back',
      description: 'Not for clients to call: register it as the redirect URI of this service\'s client at the provider. It validates the answer ' +
        '(the state, the code exchanged with the PKCE verifier, and the ID token\'s signature, issuer, audience, expiry and nonce) and redirects to the sign-in\'s `redirect_uri` ' +
        'with `code` or `error`. A `state` that is not one of ours, older than 10 minutes or already used is 400 `INVALID_OIDC_STATE`: there is then no `redirect_uri` to trust.',
      tags: ['auth'],
      querystring: OidcCallbackQuery,
      response: { 302: redirectResponse('To the sign-in\'s `redirect_uri`, with `code` and `state`, or `error`, `error_description` and `state`.', 'The sign-in\'s redirect URI with the result.'), ...problemResponses(400, 404, 429, 500, 503) },
    },
  }, async (request, reply) => {
    return reply.redirect(await app.singleSignOn.finish(request, request.query as Record<string, string | undefined>), 302)
  })

  app.post('/refresh', {
    config: { rateLimit: perIp },
    schema: {
      operationId: 'refreshTokens',
      summary: 'Exchange a refresh token for a new token pair',
      description: 'The refresh token is single use: it is rotated, and the response carries its successor. ' +
        'Presenting an already rotated token again revokes its whole family (every token of that login), ' +
        'as it means someone else holds a copy.',
      tags: ['auth'],
      body: Type.Ref(RefreshTokenRequest),
      response: { 200: jsonResponse('A new access token, and the refresh token that replaces the one sent.', Type.Ref(TokenPair)), ...problemResponses(400, 401, 413, 415, 429, 500, 503) },
    },
  }, async (request) => {
    const pair = await rotate(request, (request.body as RefreshTokenRequest).refresh_token)
    if (pair === undefined) {
      throw problem('INVALID_REFRESH_TOKEN', 'The refresh token is invalid, expired or revoked; log in again.', {
        headers: { 'www-authenticate': 'Bearer realm="tasks-api", error="invalid_token"' },
      })
    }
    return pair
  })

  app.post('/logout', {
    config: { rateLimit: perIp },
    schema: {
      operationId: 'logOut',
      summary: 'Revoke a refresh token and its family',
      description: 'Ends the login the refresh token belongs to. Answers 204 whether or not the token was valid ' +
        '(as OAuth2 token revocation does, RFC 7009), so it reveals nothing. Access tokens already issued expire on their own.',
      tags: ['auth'],
      body: Type.Ref(RefreshTokenRequest),
      response: { 204: noContent('The family is revoked.'), ...problemResponses(400, 413, 415, 429, 500, 503) },
    },
  }, async (request, reply) => {
    const revoked = await app.refreshTokensRepository.revokeFamilyOf((request.body as RefreshTokenRequest).refresh_token)
    if (revoked !== undefined) securityEvent(request.log, 'auth.logout', revoked)
    return reply.code(204).send(null)
  })

  // The OAuth2 token endpoint is form-encoded by its standard, so the form parser lives in this
  // scope only; every other route keeps accepting JSON alone.
  await app.register(async (oauth) => {
    await oauth.register(formbody)
    oauth.removeContentTypeParser('application/json')
    // Every error here carries RFC 6749's `error` member besides the problem details.
    oauth.addHook('preSerialization', async (_request, reply, payload) => {
      const body = payload as Problem
      if (reply.statusCode < 400 || body.error !== undefined) return payload
      return { ...body, error: oauthErrorFor(reply.statusCode) }
    })

    oauth.post('/token', {
      config: { rateLimit: perIp },
      schema: {
        operationId: 'issueToken',
        summary: 'OAuth2 token endpoint (password, refresh_token and authorization_code grants)',
        description: 'RFC 6749 token endpoint, `application/x-www-form-urlencoded`; the /docs *Authorize* dialog uses it. ' +
          '`grant_type=password` with `username` and `password`, `grant_type=refresh_token` with `refresh_token`, ' +
          'or `grant_type=authorization_code` with the `code` a single sign-on ended with (`GET /v1/auth/oidc/authorize`; single use, within 60 s). ' +
        'An account with two-factor on cannot use the password grant (`invalid_grant`, with an `error_description` saying so). ' +
          'Errors are problem details that also carry RFC 6749\'s `error` (`invalid_request`, `invalid_grant`, ' +
          '`unsupported_grant_type`, `invalid_scope`).',
        tags: ['auth'],
        consumes: ['application/x-www-form-urlencoded'],
        body: Type.Ref(TokenRequest),
        response: { 200: jsonResponse('An access token and a refresh token (RFC 6749 §5.1).', Type.Ref(TokenPair)), ...problemResponses(400, 413, 415, 429, 500, 503) },
      },
    }, async (request, reply) => {
      const form = request.body as TokenRequest
      // RFC 6749 §3.1: a parameter sent without a value is as if omitted.
      const param = (value: string | undefined) => value === '' ? undefined : value
      const unknownScopes = (param(form.scope)?.split(' ') ?? []).filter((s) => s !== '' && !KNOWN_SCOPES.has(s))
      if (unknownScopes.length > 0) {
        throw problem('INVALID_SCOPE', `Unknown scope: ${unknownScopes.join(' ')}.`, { error: 'invalid_scope' })
      }
      reply.header('pragma', 'no-cache')
      const missing = (name: string) => problem('VALIDATION_FAILED', `${name} is required with this grant_type.`, {
        error: 'invalid_request',
        errors: [{ in: 'body', path: `/${name}`, message: 'is required' }],
      })
      if (form.grant_type === 'password') {
        const username = param(form.username)
        const password = param(form.password)
        if (username === undefined) throw missing('username')
        if (password === undefined) throw missing('password')
        const user = await app.checkCredentials(request, username, password, 'api')
        if (user === undefined) throw problem('INVALID_GRANT', 'The username or password is wrong.', { error: 'invalid_grant' })
        if (user.mfaEnabled) throw problem('INVALID_GRANT', MFA_GRANT_REFUSAL, { error: 'invalid_grant', error_description: MFA_GRANT_REFUSAL })
        return await app.issueTokenPair(user)
      }
      if (form.grant_type === 'refresh_token') {
        const refreshToken = param(form.refresh_token)
        if (refreshToken === undefined) throw missing('refresh_token')
        const pair = await rotate(request, refreshToken)
        if (pair === undefined) throw problem('INVALID_GRANT', 'The refresh token is invalid, expired or revoked.', { error: 'invalid_grant' })
        return pair
      }
      if (form.grant_type === 'authorization_code') {
        const code = param(form.code)
        if (code === undefined) throw missing('code')
        const userId = await app.accountSecurityRepository.redeemOidcLoginCode(code)
        const user = userId === undefined ? undefined : await app.usersRepository.findById(userId)
        if (user === undefined || user.disabled) throw problem('INVALID_GRANT', 'The code is unknown, used or older than 60 s: sign in again.', { error: 'invalid_grant' })
        return await app.issueTokenPair(user)
      }
      throw problem('UNSUPPORTED_GRANT_TYPE', 'grant_type must be `password`, `refresh_token` or `authorization_code`.', { error: 'unsupported_grant_type' })
    })
  })
}

// Encapsulated like any route plugin; named so that its dependencies are checked when it is registered.
export default fp(authRoutes, { name: 'auth-routes', encapsulate: true, dependencies: ['rate-limit', 'repositories', 'credentials', 'token-issuer', 'account-mail', 'auth-cache', 'single-sign-on'] })
