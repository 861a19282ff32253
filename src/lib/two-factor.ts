import { createHmac, randomInt } from 'node:crypto'
import { generateSecret, generateURI, verify } from 'otplib'

/**
 * TOTP as RFC 6238 and every authenticator app have it (SHA-1, 6 digits, 30 s steps), through
 * otplib, and the recovery codes that stand in for a lost authenticator.
 */
export const TOTP_PERIOD_SECONDS = 30

/** A new 160-bit secret, base32 (RFC 4226's recommended length). */
export function newTotpSecret (): string {
  return generateSecret()
}

/** The `otpauth://` URI an authenticator app reads from the enrolment's QR code. */
export function totpUri (secret: string, issuer: string, account: string): string {
  return generateURI({ issuer, label: account, secret })
}

/**
 * The time step `code` belongs to when it is right for now or one step either side and comes after
 * `afterStep` (the last one accepted: no code is accepted twice), else undefined.
 */
export async function acceptedTotpStep (secret: string, code: string, afterStep: number | null): Promise<number | undefined> {
  try {
    const result = await verify({
      secret,
      token: code,
      epochTolerance: TOTP_PERIOD_SECONDS,
      ...(afterStep === null ? {} : { afterTimeStep: afterStep }),
    })
    return result.valid && 'timeStep' in result ? result.timeStep : undefined
  } catch {
    // otplib throws on a token of the wrong length or form: that is a wrong code too.
    return undefined
  }
}

/** A second factor as a login or a sensitive change presents it. */
export type SecondFactor = { code: string } | { recoveryCode: string }

/** A six-digit `code` is from the authenticator app; anything else is taken for a recovery code. */
export function secondFactorOf (code: string): SecondFactor {
  return /^[0-9]{6}$/.test(code) ? { code } : { recoveryCode: code }
}

/** How many recovery codes a user holds; regenerating replaces them all. */
export const RECOVERY_CODE_COUNT = 10
const RECOVERY_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789' // no 0/o, 1/l/i to misread

/** Ten codes like `k7m2p-x9qrt-4hv3n` (15 characters of a 31-letter alphabet: 74 bits each). */
export function newRecoveryCodes (): string[] {
  return Array.from({ length: RECOVERY_CODE_COUNT }, () => {
    const chars = Array.from({ length: 15 }, () => RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)]).join('')
    return `${chars.slice(0, 5)}-${chars.slice(5, 10)}-${chars.slice(10)}`
  })
}

/**
 * The stored form of a recovery code: HMAC-SHA256 under the purpose key, over the code without
 * case, spaces or dashes (so it may be typed either way). A stolen table alone cannot be tried.
 */
export function recoveryCodeHash (code: string, key: Buffer): string {
  const normalised = code.toLowerCase().replace(/[\s-]/g, '')
  return createHmac('sha256', key).update(normalised).digest('hex')
}
