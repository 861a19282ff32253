import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import QRCode from 'qrcode'
import type { Config } from '../../config.js'
import type { UserRow } from '../../db/schema.js'
import { problem } from '../../errors.js'
import { securityEvent } from '../../lib/security-events.js'
import { newTotpSecret, totpUri } from '../../lib/two-factor.js'
import { MfaConfirmation, TotpActivation, TotpEnrolmentRequest } from '../../schemas/account-security.js'
import { field, type FieldErrors, formChecker, refusedFields } from '../forms.js'
import { wrongCurrentPassword } from './account.js'
import { typedCode, wrongCodeMessage } from './auth.js'

const checkEnrolment = formChecker(TotpEnrolmentRequest, {
  current_password: 'Enter your current password.',
})

const checkActivation = formChecker(TotpActivation, {
  code: 'Enter the 6-digit code your app shows for this account.',
})

const checkConfirmation = formChecker(MfaConfirmation, {
  current_password: 'Enter your current password.',
  code: 'Enter the 6-digit code from your authenticator app, or one of your recovery codes.',
})

/** The pages that ask for the password (and, with two-factor on, a code) before a change. */
const confirmations = {
  enrol: {
    heading: 'Turn on two-factor authentication',
    intro: 'Logging in will then also take a code from an authenticator app on your phone. First, confirm it is you.',
    button: 'Continue',
    withCode: false,
  },
  'recovery-codes': {
    heading: 'Make new recovery codes',
    intro: 'You get ten new recovery codes; the ones you have now stop working.',
    button: 'Make new recovery codes',
    withCode: true,
  },
  disable: {
    heading: 'Turn off two-factor authentication',
    intro: 'Logging in will then take your password only. The authenticator app’s codes and your recovery codes stop working.',
    button: 'Turn off two-factor',
    withCode: true,
  },
} as const

type Confirmation = keyof typeof confirmations

/**
 * Two-factor authentication from the account page: turning it on (the password, then a QR code to
 * scan and a first code), making new recovery codes, and turning it off; on the same repository and
 * with the same checks, failure counting and events as the API's /v1/users/me/mfa.
 */
export default async function twoFactorPages (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts
  const repository = app.accountSecurityRepository

  async function confirmPage (reply: FastifyReply, name: Confirmation, errors: FieldErrors = {}) {
    return await reply.page('two-factor/confirm', { name, ...confirmations[name], errors })
  }

  async function enrolPage (reply: FastifyReply, user: UserRow, secret: string, errors: FieldErrors = {}) {
    // Inline SVG markup: an image needs no source for the CSP to allow, and no script draws it.
    const qrCode = await QRCode.toString(totpUri(secret, config.TOTP_ISSUER, user.username), { type: 'svg', margin: 2 })
    return await reply.page('two-factor/enrol', { secret, secretGroups: secret.match(/.{1,4}/g)!.join(' '), qrCode, errors })
  }

  /**
   * The codes leave the server in this response only: they are stored as hashes, and pages are
   * no-store. The download is a `data:` link made from them in the page, so they need no second
   * trip to the server: the CSP governs what a page loads, not the links it offers, and a link with
   * `download` saves a file rather than navigating (browsers refuse navigation to data: URLs only).
   */
  async function recoveryCodesPage (reply: FastifyReply, codes: string[], heading: string) {
    const text = `Recovery codes for your Tasks account. Each works once, in place of a two-factor code.\n\n${codes.join('\n')}\n`
    return await reply.page('two-factor/recovery-codes', { heading, codes, download: `data:text/plain;charset=utf-8,${encodeURIComponent(text)}` })
  }

  async function backToAccount (request: FastifyRequest, reply: FastifyReply, flash: string) {
    request.session.flash = flash
    return reply.redirect('/app/account', 303)
  }
  const alreadyOn = 'Two-factor authentication is already on.'
  const alreadyOff = 'Two-factor authentication is off.'

  /** The errors of a form with the password and a code, and their status; undefined when both are right. */
  async function refusedConfirmation (request: FastifyRequest, action: string): Promise<{ status: number, errors: FieldErrors } | undefined> {
    const user = request.webUser!
    const form = { current_password: field(request.body, 'current_password'), code: typedCode(request.body) }
    const errors = checkConfirmation(form)
    if (Object.keys(errors).length > 0) return { status: 400, errors }
    const refused = await refusedFields(async () => {
      await app.confirmCurrentPassword(request, user, form.current_password, action)
      await app.confirmSecondFactor(request, user, form.code, action, 'web')
    }, { ...wrongCurrentPassword, WRONG_MFA_CODE: ['code', wrongCodeMessage] })
    return Object.keys(refused).length > 0 ? { status: 403, errors: refused } : undefined
  }

  app.get('/enrol', async (request, reply) => {
    if (request.webUser!.mfaEnabled) return await backToAccount(request, reply, alreadyOn)
    return await confirmPage(reply, 'enrol')
  })

  app.post('/enrol', async (request, reply) => {
    const user = request.webUser!
    if (user.mfaEnabled) return await backToAccount(request, reply, alreadyOn)
    const password = field(request.body, 'current_password')
    const errors = checkEnrolment({ current_password: password })
    if (Object.keys(errors).length > 0) return await confirmPage(reply.code(400), 'enrol', errors)
    const refused = await refusedFields(async () => { await app.confirmCurrentPassword(request, user, password, 'two-factor enrolment') }, wrongCurrentPassword)
    if (Object.keys(refused).length > 0) return await confirmPage(reply.code(403), 'enrol', refused)
    const secret = newTotpSecret()
    if (!await repository.startTotpEnrolment(user.id, secret)) return await backToAccount(request, reply, alreadyOn)
    return await enrolPage(reply, user, secret)
  })

  app.post('/activate', async (request, reply) => {
    const user = request.webUser!
    // The secret is sealed in the database, with no way to read it back: the form carries it only
    // so that a wrong code can show the same QR code again. The code is checked against the sealed one.
    const secret = field(request.body, 'secret')
    if (!/^[A-Z2-7]{16,128}$/.test(secret)) throw problem('BAD_REQUEST', 'This form is incomplete: start again from your account page.')
    const code = typedCode(request.body)
    const errors = checkActivation({ code })
    if (Object.keys(errors).length > 0) return await enrolPage(reply.code(400), user, secret, errors)
    let codes: string[] = []
    const refused = await refusedFields(async () => { codes = await app.activateTwoFactor(request, user, code, 'web') }, {
      MFA_NOT_ENROLLING: ['notEnrolling', ''],
      WRONG_MFA_CODE: ['code', 'This code is wrong: check that the app shows the account you just added, and that the phone’s clock is right.'],
    })
    if (refused.notEnrolling !== undefined) return await backToAccount(request, reply, 'Two-factor authentication is already on, or its setup was not started: start again if it is off.')
    if (Object.keys(refused).length > 0) return await enrolPage(reply.code(403), user, secret, refused)
    return await recoveryCodesPage(reply, codes, 'Two-factor authentication is on')
  })

  app.get('/recovery-codes', async (request, reply) => {
    if (!request.webUser!.mfaEnabled) return await backToAccount(request, reply, alreadyOff)
    return await confirmPage(reply, 'recovery-codes')
  })

  app.post('/recovery-codes', async (request, reply) => {
    const user = request.webUser!
    if (!user.mfaEnabled) return await backToAccount(request, reply, alreadyOff)
    const refused = await refusedConfirmation(request, 'replacing recovery codes')
    if (refused !== undefined) return await confirmPage(reply.code(refused.status), 'recovery-codes', refused.errors)
    const codes = await repository.regenerateRecoveryCodes(user.id)
    if (codes === undefined) return await backToAccount(request, reply, alreadyOff)
    return await recoveryCodesPage(reply, codes, 'Your new recovery codes')
  })

  app.get('/disable', async (request, reply) => {
    if (!request.webUser!.mfaEnabled) return await backToAccount(request, reply, alreadyOff)
    return await confirmPage(reply, 'disable')
  })

  app.post('/disable', async (request, reply) => {
    const user = request.webUser!
    if (!user.mfaEnabled) return await backToAccount(request, reply, alreadyOff)
    const refused = await refusedConfirmation(request, 'turning two-factor off')
    if (refused !== undefined) return await confirmPage(reply.code(refused.status), 'disable', refused.errors)
    await repository.disableMfa(user.id)
    securityEvent(request.log, 'mfa.disabled', { userId: user.id, reason: 'web' })
    return await backToAccount(request, reply, 'Two-factor authentication is off: logging in takes your password only.')
  })
}
