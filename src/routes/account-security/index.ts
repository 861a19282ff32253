import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import type { UserRow } from '../../db/schema.js'
import { problem } from '../../errors.js'
import { securityEvent } from '../../lib/security-events.js'
import { newTotpSecret, totpUri } from '../../lib/two-factor.js'
import { MfaConfirmation, RecoveryCodes, TotpActivation, TotpEnrolment, TotpEnrolmentRequest } from '../../schemas/account-security.js'
import { IdParams, jsonResponse, noContent, problemResponses } from '../../schemas/common.js'

/**
 * Your account's security under /v1/users: verifying your email, and TOTP two-factor with its
 * recovery codes; and an admin's way to turn a user's two-factor off.
 */
const accountSecurityRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, opts) => {
  const { config } = opts
  const repository = app.accountSecurityRepository
  // Managing an account takes an access token; API keys are for integrations.
  const self = { auth: { apiKeys: false } }
  const admin = { auth: { role: 'admin' as const, apiKeys: false } }
  const perIp = { max: config.AUTH_RATE_LIMIT_MAX, timeWindow: config.AUTH_RATE_LIMIT_WINDOW * 1000 }

  async function signedInUser (request: FastifyRequest): Promise<UserRow> {
    const user = await app.usersRepository.findById(request.auth!.userId)
    if (user === undefined) throw problem('INVALID_TOKEN', 'The account no longer exists.')
    return user
  }

  app.post('/me/email/verification', {
    config: { ...self, rateLimit: perIp },
    schema: {
      operationId: 'requestEmailVerification',
      summary: 'Mail a verification link to your email address',
      description: 'Sends a link (single use, 24 hours) to your current address; following it, or posting its token to `POST /v1/auth/email/verify`, ' +
        'marks the address verified. Asking again sends a new link; earlier ones keep working until they expire. ' +
        '400 `NO_EMAIL` when the account has no address; 503 `MAIL_UNAVAILABLE` when the server cannot send mail.',
      tags: ['users'],
      response: { 202: noContent('Accepted: the link is on its way.'), ...problemResponses(400, 429, 500, 503) },
    },
  }, async (request, reply) => {
    await app.sendEmailVerification(request, await signedInUser(request))
    return reply.code(202).send(null)
  })

  app.post('/me/mfa/totp', {
    config: self,
    schema: {
      operationId: 'startTotpEnrolment',
      summary: 'Start turning on two-factor (TOTP)',
      description: 'Makes a new TOTP secret (RFC 6238: SHA-1, 6 digits, 30 s) for your authenticator app: show `otpauth_uri` as a QR code, or type `secret` in. ' +
        'Two-factor is not on until `POST /v1/users/me/mfa/totp/activate` confirms a code. Starting again replaces the secret. ' +
        'Needs your password (403 `WRONG_CURRENT_PASSWORD`, counted as a failed login); 409 `MFA_ALREADY_ENABLED` when it is on.',
      tags: ['users'],
      body: Type.Ref(TotpEnrolmentRequest),
      response: { 201: jsonResponse('The secret to enrol.', Type.Ref(TotpEnrolment)), ...problemResponses(400, 403, 409, 413, 415, 429, 500, 503) },
    },
  }, async (request, reply) => {
    const user = await signedInUser(request)
    await app.confirmCurrentPassword(request, user, (request.body as TotpEnrolmentRequest).current_password, 'two-factor enrolment')
    const secret = newTotpSecret()
    if (!await repository.startTotpEnrolment(user.id, secret)) throw problem('MFA_ALREADY_ENABLED', 'Two-factor is already on; turn it off first to enrol another authenticator.')
    return reply.code(201).send({ secret, otpauth_uri: totpUri(secret, config.TOTP_ISSUER, user.username) })
  })

  app.post('/me/mfa/totp/activate', {
    config: self,
    schema: {
      operationId: 'activateTotp',
      summary: 'Turn on two-factor with a code from your app',
      description: 'Confirms that your authenticator app has the enrolled secret and turns two-factor on: from now on logging in also takes a code. ' +
        'Returns 10 recovery codes, shown this once. 403 `WRONG_MFA_CODE` for a wrong code; 409 `MFA_NOT_ENROLLING` without an enrolment under way.',
      tags: ['users'],
      body: Type.Ref(TotpActivation),
      response: { 200: jsonResponse('Two-factor is on: your recovery codes.', Type.Ref(RecoveryCodes)), ...problemResponses(400, 403, 409, 413, 415, 429, 500, 503) },
    },
  }, async (request) => {
    return { recovery_codes: await app.activateTwoFactor(request, await signedInUser(request), (request.body as TotpActivation).code, 'api') }
  })

  app.delete('/me/mfa/totp', {
    config: self,
    schema: {
      operationId: 'disableTotp',
      summary: 'Turn off two-factor',
      description: 'Needs your password and a code (or a recovery code). Forgets the secret and the recovery codes. ' +
        '403 `WRONG_CURRENT_PASSWORD` or `WRONG_MFA_CODE`; 409 `MFA_NOT_ENABLED` when it is off.',
      tags: ['users'],
      body: Type.Ref(MfaConfirmation),
      response: { 204: noContent('Two-factor is off.'), ...problemResponses(400, 403, 409, 413, 415, 429, 500, 503) },
    },
  }, async (request, reply) => {
    const user = await signedInUser(request)
    const { current_password: password, code } = request.body as MfaConfirmation
    if (!user.mfaEnabled) throw problem('MFA_NOT_ENABLED', 'Two-factor is already off.')
    await app.confirmCurrentPassword(request, user, password, 'turning two-factor off')
    await app.confirmSecondFactor(request, user, code, 'turning two-factor off', 'api')
    await repository.disableMfa(user.id)
    securityEvent(request.log, 'mfa.disabled', { userId: user.id })
    return reply.code(204).send(null)
  })

  app.post('/me/mfa/recovery-codes', {
    config: self,
    schema: {
      operationId: 'regenerateRecoveryCodes',
      summary: 'Replace your recovery codes',
      description: 'Ten new recovery codes, shown this once; the old ones stop working. Needs your password and a code (or a recovery code). ' +
        '403 `WRONG_CURRENT_PASSWORD` or `WRONG_MFA_CODE`; 409 `MFA_NOT_ENABLED` when two-factor is off.',
      tags: ['users'],
      body: Type.Ref(MfaConfirmation),
      response: { 200: jsonResponse('Your new recovery codes.', Type.Ref(RecoveryCodes)), ...problemResponses(400, 403, 409, 413, 415, 429, 500, 503) },
    },
  }, async (request) => {
    const user = await signedInUser(request)
    const { current_password: password, code } = request.body as MfaConfirmation
    if (!user.mfaEnabled) throw problem('MFA_NOT_ENABLED', 'Two-factor is off: there are no recovery codes to replace.')
    await app.confirmCurrentPassword(request, user, password, 'replacing recovery codes')
    await app.confirmSecondFactor(request, user, code, 'replacing recovery codes', 'api')
    const codes = await repository.regenerateRecoveryCodes(user.id)
    if (codes === undefined) throw problem('MFA_NOT_ENABLED', 'Two-factor was turned off meanwhile.')
    return { recovery_codes: codes }
  })

  app.delete('/:id/mfa', {
    config: admin,
    schema: {
      operationId: 'disableUserMfa',
      summary: 'Turn off a user\'s two-factor (admin)',
      description: 'For a user who lost both their authenticator and their recovery codes: they can then log in with their password alone, and enrol again. ' +
        'Answers 204 whether or not it was on.',
      tags: ['users'],
      params: IdParams,
      response: { 204: noContent('Two-factor is off for this user.'), ...problemResponses(400, 404, 414, 500, 503) },
    },
  }, async (request, reply) => {
    const { id } = request.params as IdParams
    if (await app.usersRepository.findById(id) === undefined) throw problem('USER_NOT_FOUND', 'No user has this id.')
    if (await repository.disableMfa(id)) securityEvent(request.log, 'mfa.disabled', { userId: id, actorId: request.auth!.userId })
    return reply.code(204).send(null)
  })
}

export default fp(accountSecurityRoutes, { name: 'account-security-routes', encapsulate: true, dependencies: ['repositories', 'authorize', 'credentials', 'login-throttle', 'account-mail'] })
