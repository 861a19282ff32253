import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { UserRow } from '../../db/schema.js'
import { problem } from '../../errors.js'
import { hashPassword, verifyAgainstDummy, verifyPassword } from '../../lib/passwords.js'
import { securityEvent } from '../../lib/security-events.js'
import { type SecondFactor, secondFactorOf } from '../../lib/two-factor.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The user when `password` is theirs and the account is enabled, else undefined — decided the
     * same way for every way in (API login, token endpoint, web login).
     */
    checkCredentials: (request: FastifyRequest, username: string, password: string, via: 'api' | 'web') => Promise<UserRow | undefined>
    /**
     * Refuses (403 WRONG_CURRENT_PASSWORD) unless `password` is the signed-in user's. Wrong ones
     * count as failed logins of the username, so a stolen access token is no way to guess it.
     */
    confirmCurrentPassword: (request: FastifyRequest, user: UserRow, password: string, action: string) => Promise<void>
    /**
     * The second step of a two-factor login, after `checkCredentials` found the password right: the
     * user when `factor` is right for the `mfa_token`'s account. Refuses with 401 INVALID_MFA_TOKEN
     * (unknown, expired or spent token) or INVALID_MFA_CODE (counted as a failed login), or 429.
     */
    completeSecondFactor: (request: FastifyRequest, mfaToken: string, factor: SecondFactor, via: 'api' | 'web') => Promise<UserRow>
    /**
     * Refuses (403 WRONG_MFA_CODE) unless `code` is a right TOTP code or an unused recovery code of
     * the signed-in user (which it uses up). Wrong ones count as failed logins of the username.
     */
    confirmSecondFactor: (request: FastifyRequest, user: UserRow, code: string, action: string, via: 'api' | 'web') => Promise<void>
    /**
     * Turns two-factor on when `code` is right for the secret being enrolled; the recovery codes.
     * Refuses with 409 MFA_NOT_ENROLLING, 403 WRONG_MFA_CODE (counted as a failed login) or 429.
     */
    activateTwoFactor: (request: FastifyRequest, user: UserRow, code: string, via: 'api' | 'web') => Promise<string[]>
  }
}

async function credentialsPlugin (app: FastifyInstance): Promise<void> {
  app.decorate('checkCredentials', async (request: FastifyRequest, username: string, password: string, via: 'api' | 'web') => {
    await app.loginThrottle.check(request, username)
    const user = await app.usersRepository.findByUsername(username)
    if (user === undefined) {
      // Same work and same answer as a wrong password, so responses do not reveal who exists.
      await verifyAgainstDummy(password)
    } else {
      const check = await verifyPassword(user.passwordHash, password)
      if (check.ok && !user.disabled) {
        if (check.needsRehash) await app.usersRepository.replacePasswordHash(user.id, await hashPassword(password))
        securityEvent(request.log, 'auth.login_succeeded', { userId: user.id, ...(via === 'web' ? { reason: 'web' } : {}) })
        return user
      }
    }
    await app.loginThrottle.recordFailure(request, username)
    securityEvent(request.log, 'auth.login_failed', { username, reason: user === undefined ? 'unknown user' : user.disabled ? 'disabled' : 'wrong password' })
    return undefined
  })

  app.decorate('confirmCurrentPassword', async (request: FastifyRequest, user: UserRow, password: string, action: string) => {
    await app.loginThrottle.check(request, user.username)
    if ((await verifyPassword(user.passwordHash, password)).ok) return
    await app.loginThrottle.recordFailure(request, user.username)
    securityEvent(request.log, 'auth.login_failed', { userId: user.id, reason: `wrong current password on ${action}` })
    throw problem('WRONG_CURRENT_PASSWORD', 'The current password is wrong.')
  })

  app.decorate('completeSecondFactor', async (request: FastifyRequest, mfaToken: string, factor: SecondFactor, via: 'api' | 'web') => {
    const challenge = { headers: { 'www-authenticate': 'Bearer realm="tasks-api"' } }
    const invalidToken = () => problem('INVALID_MFA_TOKEN', 'The mfa_token is unknown, expired or spent: log in again with your password.', challenge)
    const repository = app.accountSecurityRepository
    const account = await repository.liveTokenAccount('mfa_login', mfaToken)
    if (account === undefined) throw invalidToken()
    await app.loginThrottle.check(request, account.username)
    const result = await repository.completeMfaLogin(mfaToken, factor)
    if ('failure' in result) {
      if (result.failure === 'invalid_token') throw invalidToken()
      await app.loginThrottle.recordFailure(request, account.username)
      securityEvent(request.log, 'mfa.failed', { userId: result.userId, reason: `${'code' in factor ? 'wrong code' : 'wrong recovery code'} at ${via} login` })
      throw problem('INVALID_MFA_CODE', 'The code is wrong, already used, or not from this account\'s authenticator.', challenge)
    }
    const user = await app.usersRepository.findById(result.userId)
    if (user === undefined) throw invalidToken()
    if ('recoveryCode' in factor) securityEvent(request.log, 'recovery_code.used', { userId: user.id, reason: `${via} login` })
    securityEvent(request.log, 'auth.login_succeeded', { userId: user.id, reason: `${via}, second factor` })
    return user
  })

  app.decorate('confirmSecondFactor', async (request: FastifyRequest, user: UserRow, code: string, action: string, via: 'api' | 'web') => {
    const factor = secondFactorOf(code)
    if (await app.accountSecurityRepository.checkSecondFactor(user.id, factor)) {
      if ('recoveryCode' in factor) securityEvent(request.log, 'recovery_code.used', { userId: user.id, reason: `${action} (${via})` })
      return
    }
    await app.loginThrottle.recordFailure(request, user.username)
    securityEvent(request.log, 'mfa.failed', { userId: user.id, reason: `wrong code on ${action} (${via})` })
    throw problem('WRONG_MFA_CODE', 'The code is wrong or already used.')
  })

  app.decorate('activateTwoFactor', async (request: FastifyRequest, user: UserRow, code: string, via: 'api' | 'web') => {
    await app.loginThrottle.check(request, user.username)
    const result = await app.accountSecurityRepository.activateTotp(user.id, code)
    if (result === 'not_enrolling') throw problem('MFA_NOT_ENROLLING', 'Two-factor is already on, or its enrolment was not started: start it first.')
    if (result === 'wrong_code') {
      await app.loginThrottle.recordFailure(request, user.username)
      securityEvent(request.log, 'mfa.failed', { userId: user.id, reason: `wrong code on activation (${via})` })
      throw problem('WRONG_MFA_CODE', 'The code is wrong: check that the app shows the account just enrolled, and that its clock is right.')
    }
    securityEvent(request.log, 'mfa.enabled', { userId: user.id, reason: via })
    return result
  })
}

export default fp(credentialsPlugin, { name: 'credentials', dependencies: ['repositories', 'login-throttle'] })
