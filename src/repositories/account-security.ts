import { randomBytes } from 'node:crypto'
import { and, eq, gt, isNull, type SQL, sql } from 'drizzle-orm'
import { type Database, deleteExpired, queryRows } from '../db/client.js'
import { oneTimeTokens, recoveryCodes, users } from '../db/schema.js'
import { openSealed, sealSecret } from '../lib/secret-box.js'
import { acceptedTotpStep, newRecoveryCodes, recoveryCodeHash, type SecondFactor } from '../lib/two-factor.js'
import { hashToken } from './refresh-tokens.js'
import { replacePassword } from './users.js'

/** How long each kind of one-time token lasts. */
export const TOKEN_TTL_SECONDS = { email_verification: 86_400, password_reset: 3_600, mfa_login: 300, oidc_login: 60 } as const
/** Wrong codes an `mfa_token` survives; the next one spends it. */
export const MFA_LOGIN_MAX_FAILURES = 5
/** The accounts one address may have a reset mailed to at once (addresses are not unique). */
const RESETS_PER_ADDRESS = 5

type Purpose = keyof typeof TOKEN_TTL_SECONDS

/** The row of `token` for `purpose`, if it is neither spent nor expired. */
function liveToken (purpose: Purpose, token: string): SQL | undefined {
  return and(eq(oneTimeTokens.tokenHash, hashToken(token)), eq(oneTimeTokens.purpose, purpose), isNull(oneTimeTokens.usedAt), gt(oneTimeTokens.expiresAt, sql`now()`))
}

/** 256 random bits, with a prefix that says what the token is for (logs, secret scanners). */
function newToken (prefix: string): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`
}

/** Keys of the two purposes this repository seals and hashes under (src/lib/keys.ts). */
export interface AccountSecurityKeys {
  totpSecret: Buffer[]
  recoveryCode: Buffer[]
}

/**
 * Email verification, password reset and TOTP two-factor: the one-time tokens behind them (only
 * their SHA-256 is stored; each is spent by a conditional update, so it works once however many
 * requests race), the sealed TOTP secret, and the recovery codes.
 */
export function createAccountSecurityRepository (db: Database, keys: AccountSecurityKeys) {
  /** Spends a live token of `purpose`, returning its row; undefined when unknown, spent or expired. */
  async function spend (tx: Database, purpose: Purpose, token: string) {
    const [row] = await tx.update(oneTimeTokens).set({ usedAt: sql`now()` })
      .where(liveToken(purpose, token))
      .returning({ userId: oneTimeTokens.userId, email: oneTimeTokens.email })
    return row
  }

  const expiry = (purpose: Purpose) => sql`now() + make_interval(secs => ${TOKEN_TTL_SECONDS[purpose]})`

  /** Whether `factor` is right for the user now, remembering it so that it is never accepted again. */
  async function acceptSecondFactor (tx: Database, userId: string, factor: SecondFactor): Promise<boolean> {
    if ('recoveryCode' in factor) {
      const hashes = keys.recoveryCode.map((key) => recoveryCodeHash(factor.recoveryCode, key))
      const used = await queryRows<{ n: number }>(tx, sql`
        update recovery_codes set used_at = now()
        where user_id = ${userId} and used_at is null and code_hash in (${sql.join(hashes.map((h) => sql`${h}`), sql`, `)})
        returning 1 as n`)
      return used.length > 0
    }
    const [user] = await tx.select({ secret: users.totpSecret, lastStep: users.totpLastStep }).from(users).where(eq(users.id, userId))
    if (user === undefined || user.secret === null) return false
    const { plain: secret, stale } = openSealed(user.secret, keys.totpSecret)
    const step = await acceptedTotpStep(secret, factor.code, user.lastStep)
    if (step === undefined) return false
    // Sealed under a root since rotated: sealed again under the current one.
    if (stale) await tx.update(users).set({ totpSecret: sealSecret(secret, keys.totpSecret) }).where(eq(users.id, userId))
    // Conditional, so that of two requests with the same code only one is accepted.
    const accepted = await tx.update(users).set({ totpLastStep: step })
      .where(and(eq(users.id, userId), sql`(${users.totpLastStep} is null or ${users.totpLastStep} < ${step})`))
      .returning({ id: users.id })
    return accepted.length === 1
  }

  /** Replaces the user's recovery codes with new ones, returned in clear this once. */
  async function replaceRecoveryCodes (tx: Database, userId: string): Promise<string[]> {
    const codes = newRecoveryCodes()
    await tx.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId))
    await tx.insert(recoveryCodes).values(codes.map((code) => ({ userId, codeHash: recoveryCodeHash(code, keys.recoveryCode[0]!) })))
    return codes
  }

  return {
    /** A verification token for the user's current address; undefined when they have none. */
    async issueEmailVerification (userId: string): Promise<{ token: string, email: string } | undefined> {
      const token = newToken('ev')
      const [row] = await queryRows<{ email: string }>(db, sql`
        insert into one_time_tokens (user_id, purpose, token_hash, email, expires_at)
        select id, 'email_verification', ${hashToken(token)}, email, ${expiry('email_verification')}
        from users where id = ${userId} and email is not null
        returning email`)
      return row === undefined ? undefined : { token, email: row.email }
    },

    /**
     * Spends the token and marks the address it was mailed to as verified, if it is still the
     * account's; returns the user's id, or undefined when the token is no good (or proves an address
     * the account no longer has).
     */
    async verifyEmail (token: string): Promise<string | undefined> {
      return await db.transaction(async (tx) => {
        const spent = await spend(tx, 'email_verification', token)
        if (spent === undefined) return undefined
        const [row] = await tx.update(users).set({ emailVerified: true, updatedAt: sql`now()` })
          .where(and(eq(users.id, spent.userId), sql`${users.email} = ${spent.email}`))
          .returning({ id: users.id })
        return row?.id
      })
    },

    /**
     * Reset tokens for the enabled accounts with this verified address (none, usually one). The
     * same statement runs, and as many tokens are made, whether or not an account matches, so the
     * work done does not say which.
     */
    async issuePasswordResets (email: string): Promise<Array<{ token: string, userId: string, username: string, email: string }>> {
      const tokens = Array.from({ length: RESETS_PER_ADDRESS }, () => newToken('pr'))
      const hashes = tokens.map(hashToken)
      const rows = await queryRows<{ user_id: string, username: string, email: string, n: number }>(db, sql`
        with matches as (
          select id, username, email, row_number() over (order by created_at, id)::int as n from users
          where lower(email) = lower(${email}) and email_verified and not disabled
          order by created_at, id limit ${RESETS_PER_ADDRESS}
        ), issued as (
          insert into one_time_tokens (user_id, purpose, token_hash, expires_at)
          select id, 'password_reset', (array[${sql.join(hashes.map((h) => sql`${h}::text`), sql`, `)}])[n], ${expiry('password_reset')}
          from matches
          returning user_id
        )
        select m.id as user_id, m.username, m.email, m.n from matches m join issued i on i.user_id = m.id`)
      return rows.map((row) => ({ token: tokens[row.n - 1]!, userId: row.user_id, username: row.username, email: row.email }))
    },

    /**
     * The account a live token is for, without spending it: to check a reset's new password, or a
     * two-factor login's throttle, before the work that spends it.
     */
    async liveTokenAccount (purpose: 'password_reset' | 'mfa_login', token: string): Promise<{ id: string, username: string } | undefined> {
      const [row] = await db.select({ id: users.id, username: users.username }).from(oneTimeTokens)
        .innerJoin(users, eq(users.id, oneTimeTokens.userId))
        .where(liveToken(purpose, token))
      return row
    },

    /**
     * Spends the token and sets the password, ending every earlier sign-in and every other reset
     * token of the account; the user's id, or undefined when the token was spent meanwhile.
     */
    async resetPassword (token: string, passwordHash: string): Promise<string | undefined> {
      return await db.transaction(async (tx) => {
        const spent = await spend(tx, 'password_reset', token)
        if (spent === undefined) return undefined
        await replacePassword(tx, spent.userId, passwordHash)
        return spent.userId
      })
    },

    /** Starts (or restarts) enrolment with a new secret; false when two-factor is already on. */
    async startTotpEnrolment (userId: string, secret: string): Promise<boolean> {
      const rows = await db.update(users).set({ totpSecret: sealSecret(secret, keys.totpSecret), totpLastStep: null })
        .where(and(eq(users.id, userId), eq(users.mfaEnabled, false)))
        .returning({ id: users.id })
      return rows.length === 1
    },

    /**
     * Turns two-factor on when `code` is right for the secret being enrolled, and makes the recovery
     * codes; 'not_enrolling' when there is no enrolment under way (or two-factor is already on).
     */
    async activateTotp (userId: string, code: string): Promise<string[] | 'not_enrolling' | 'wrong_code'> {
      return await db.transaction(async (tx) => {
        const [user] = await tx.select({ secret: users.totpSecret, enabled: users.mfaEnabled }).from(users).where(eq(users.id, userId)).for('update')
        if (user === undefined || user.enabled || user.secret === null) return 'not_enrolling'
        if (!await acceptSecondFactor(tx, userId, { code })) return 'wrong_code'
        await tx.update(users).set({ mfaEnabled: true, updatedAt: sql`now()` }).where(eq(users.id, userId))
        return await replaceRecoveryCodes(tx, userId)
      })
    },

    /** Whether the second factor is right (and now used up); false when two-factor is off. */
    async checkSecondFactor (userId: string, factor: SecondFactor): Promise<boolean> {
      return await db.transaction(async (tx) => {
        const [user] = await tx.select({ enabled: users.mfaEnabled }).from(users).where(eq(users.id, userId))
        return user?.enabled === true && await acceptSecondFactor(tx, userId, factor)
      })
    },

    /** New recovery codes, voiding the old ones; undefined when two-factor is off. */
    async regenerateRecoveryCodes (userId: string): Promise<string[] | undefined> {
      return await db.transaction(async (tx) => {
        const [user] = await tx.select({ enabled: users.mfaEnabled }).from(users).where(eq(users.id, userId)).for('update')
        return user?.enabled === true ? await replaceRecoveryCodes(tx, userId) : undefined
      })
    },

    /** Turns two-factor off, forgetting the secret and the recovery codes; whether it was on. */
    async disableMfa (userId: string): Promise<boolean> {
      return await db.transaction(async (tx) => {
        const [before] = await tx.select({ enabled: users.mfaEnabled }).from(users).where(eq(users.id, userId)).for('update')
        await tx.update(users).set({ mfaEnabled: false, totpSecret: null, totpLastStep: null, updatedAt: sql`now()` }).where(eq(users.id, userId))
        await tx.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId))
        return before?.enabled === true
      })
    },

    /** Recovery codes the user has not used yet. */
    async unusedRecoveryCodes (userId: string): Promise<number> {
      const [row] = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from recovery_codes where user_id = ${userId} and used_at is null`)
      return row?.n ?? 0
    },

    /** The token of a two-factor login's second step, after the right password. */
    async issueMfaLogin (userId: string): Promise<string> {
      const token = newToken('mfa')
      await db.insert(oneTimeTokens).values({ userId, purpose: 'mfa_login', tokenHash: hashToken(token), expiresAt: expiry('mfa_login') })
      return token
    },

    /** The one-time code a single sign-on ends with, for `grant_type=authorization_code`. */
    async issueOidcLoginCode (userId: string): Promise<string> {
      const token = newToken('sso')
      await db.insert(oneTimeTokens).values({ userId, purpose: 'oidc_login', tokenHash: hashToken(token), expiresAt: expiry('oidc_login') })
      return token
    },

    /** Spends a single sign-on's code: its user's id, or undefined when unknown, used or expired. */
    async redeemOidcLoginCode (code: string): Promise<string | undefined> {
      return (await spend(db, 'oidc_login', code))?.userId
    },

    /**
     * The second step of a two-factor login: the user's id when the token is live and the factor
     * right (the token is then spent); 'invalid_token' when the token is no good; 'wrong_factor'
     * when the factor is wrong (counted: the MFA_LOGIN_MAX_FAILURES-th spends the token).
     */
    async completeMfaLogin (token: string, factor: SecondFactor): Promise<{ userId: string } | { failure: 'invalid_token' } | { failure: 'wrong_factor', userId: string }> {
      return await db.transaction(async (tx) => {
        const [row] = await tx.select({ id: oneTimeTokens.id, userId: oneTimeTokens.userId }).from(oneTimeTokens)
          .where(liveToken('mfa_login', token))
          .for('update')
        if (row === undefined) return { failure: 'invalid_token' as const }
        const [user] = await tx.select({ enabled: users.mfaEnabled, disabled: users.disabled }).from(users).where(eq(users.id, row.userId))
        if (user === undefined || user.disabled || !user.enabled) return { failure: 'invalid_token' as const }
        if (await acceptSecondFactor(tx, row.userId, factor)) {
          await tx.update(oneTimeTokens).set({ usedAt: sql`now()` }).where(eq(oneTimeTokens.id, row.id))
          return { userId: row.userId }
        }
        await tx.update(oneTimeTokens).set({
          failures: sql`${oneTimeTokens.failures} + 1`,
          usedAt: sql`case when ${oneTimeTokens.failures} + 1 >= ${MFA_LOGIN_MAX_FAILURES} then now() end`,
        }).where(eq(oneTimeTokens.id, row.id))
        return { failure: 'wrong_factor' as const, userId: row.userId }
      })
    },

    /** Deletes expired one-time tokens (spent ones go when they expire); returns how many. */
    purgeExpired: async (): Promise<number> => await deleteExpired(db, oneTimeTokens, oneTimeTokens.expiresAt),
  }
}

export type AccountSecurityRepository = ReturnType<typeof createAccountSecurityRepository>
