import { type Static, Type } from '@sinclair/typebox'
import { Email, Password } from './users.js'

/** A token from a mail's link: 256 random bits, base64url, behind a two-letter prefix. */
const MailedToken = (example: string) => Type.String({ minLength: 1, maxLength: 200, description: 'The token from the mailed link (its `token` parameter).', example })

const CurrentPassword = Type.String({ minLength: 1, maxLength: 128, description: 'Your password, again: a stolen access token alone cannot change your second factor.', example: 'correct horse battery staple' })

/** Six digits, as authenticator apps show them. */
const TotpCode = Type.String({ pattern: '^[0-9]{6}$', description: 'The 6-digit code your authenticator app shows now (RFC 6238: SHA-1, 30 s). Codes of the step before and after are accepted too, each only once.', example: '492039' })

/** A recovery code, with or without its dashes, in any case. */
const RecoveryCode = Type.String({ minLength: 10, maxLength: 40, description: 'One of your recovery codes (`k7m2p-x9qrt-4hv3n`); each works once. Dashes, spaces and case do not matter.', example: 'k7m2p-x9qrt-4hv3n' })

export const EmailVerification = Type.Object({
  token: MailedToken('ev_Q2hhbmdlIG1lIGZvciBhIHJlYWwgdG9rZW4gZnJvbSB0aGUgbWFpbA'),
}, { $id: 'EmailVerification', title: 'EmailVerification', additionalProperties: false, example: { token: 'ev_Q2hhbmdlIG1lIGZvciBhIHJlYWwgdG9rZW4gZnJvbSB0aGUgbWFpbA' } })
export type EmailVerification = Static<typeof EmailVerification>

export const PasswordForgotten = Type.Object({
  email: Email,
}, { $id: 'PasswordForgotten', title: 'PasswordForgotten', additionalProperties: false, example: { email: 'alice@example.com' } })
export type PasswordForgotten = Static<typeof PasswordForgotten>

export const PasswordReset = Type.Object({
  token: MailedToken('pr_Q2hhbmdlIG1lIGZvciBhIHJlYWwgdG9rZW4gZnJvbSB0aGUgbWFpbA'),
  new_password: Password,
}, {
  $id: 'PasswordReset',
  title: 'PasswordReset',
  additionalProperties: false,
  example: { token: 'pr_Q2hhbmdlIG1lIGZvciBhIHJlYWwgdG9rZW4gZnJvbSB0aGUgbWFpbA', new_password: 'a new long passphrase' },
})
export type PasswordReset = Static<typeof PasswordReset>

export const TotpEnrolmentRequest = Type.Object({
  current_password: CurrentPassword,
}, { $id: 'TotpEnrolmentRequest', title: 'TotpEnrolmentRequest', additionalProperties: false, example: { current_password: 'correct horse battery staple' } })
export type TotpEnrolmentRequest = Static<typeof TotpEnrolmentRequest>

export const TotpEnrolment = Type.Object({
  secret: Type.String({ description: 'The shared secret, base32 (160 bits), for apps that take it typed in. Shown during enrolment only.', example: 'R2GTDODKSVWN5GUBMMDTGDZFGV4BQQZK' }),
  otpauth_uri: Type.String({ description: 'The `otpauth://totp/…` URI to show as a QR code: SHA-1, 6 digits, 30 s.', example: 'otpauth://totp/Tasks%20API:alice?secret=R2GTDODKSVWN5GUBMMDTGDZFGV4BQQZK&issuer=Tasks%20API' }),
}, {
  $id: 'TotpEnrolment',
  title: 'TotpEnrolment',
  description: 'A TOTP secret being enrolled. Two-factor is not on until `POST /v1/users/me/mfa/totp/activate` proves your app has it; starting again replaces the secret.',
  example: { secret: 'R2GTDODKSVWN5GUBMMDTGDZFGV4BQQZK', otpauth_uri: 'otpauth://totp/Tasks%20API:alice?secret=R2GTDODKSVWN5GUBMMDTGDZFGV4BQQZK&issuer=Tasks%20API' },
})
export type TotpEnrolment = Static<typeof TotpEnrolment>

export const TotpActivation = Type.Object({
  code: TotpCode,
}, { $id: 'TotpActivation', title: 'TotpActivation', additionalProperties: false, example: { code: '492039' } })
export type TotpActivation = Static<typeof TotpActivation>

export const RecoveryCodes = Type.Object({
  recovery_codes: Type.Array(Type.String({ example: 'k7m2p-x9qrt-4hv3n' }), {
    minItems: 10,
    maxItems: 10,
    description: 'Ten codes, each good for one login without your authenticator. Shown this once (only their hashes are kept): store them somewhere safe. New ones void these.',
  }),
}, {
  $id: 'RecoveryCodes',
  title: 'RecoveryCodes',
  example: { recovery_codes: ['k7m2p-x9qrt-4hv3n', 'a3b4c-d5e6f-g7h8j', 'mnpqr-stuvw-xyz23', '45678-9abcd-efghj', 'kmnpq-rstuv-wxyz2', '3456a-bcdef-ghjkm', 'npqrs-tuvwx-yz234', '56789-abcde-fghjk', 'mnpqr-23456-stuvw', 'xyz78-9abcd-efghj'] },
})
export type RecoveryCodes = Static<typeof RecoveryCodes>

/** Your password and a second factor: what turning two-factor off or renewing recovery codes takes. */
export const MfaConfirmation = Type.Object({
  current_password: CurrentPassword,
  code: Type.Union([TotpCode, RecoveryCode], { description: 'A code from your authenticator app, or one of your recovery codes (which it then uses up).' }),
}, {
  $id: 'MfaConfirmation',
  title: 'MfaConfirmation',
  additionalProperties: false,
  example: { current_password: 'correct horse battery staple', code: '492039' },
})
export type MfaConfirmation = Static<typeof MfaConfirmation>

const MfaToken = Type.String({ minLength: 1, maxLength: 200, description: 'The `mfa_token` of the `MFA_REQUIRED` answer to `POST /v1/auth/login`.', example: 'mfa_Vq3l8x0Yk2pT9b7Ns1cR4dE6fG5hJ8mK0wQzXyA1B2C' })

export const MfaLogin = Type.Union([
  Type.Object({ mfa_token: MfaToken, code: TotpCode }, { additionalProperties: false, title: 'MfaLoginWithCode' }),
  Type.Object({ mfa_token: MfaToken, recovery_code: RecoveryCode }, { additionalProperties: false, title: 'MfaLoginWithRecoveryCode' }),
], {
  $id: 'MfaLogin',
  title: 'MfaLogin',
  description: 'The second step of a two-factor login: the `mfa_token` with either a `code` or a `recovery_code`.',
  example: { mfa_token: 'mfa_Vq3l8x0Yk2pT9b7Ns1cR4dE6fG5hJ8mK0wQzXyA1B2C', code: '492039' },
})
export type MfaLogin = Static<typeof MfaLogin>
