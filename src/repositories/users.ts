import { and, desc, eq, getTableColumns, inArray, isNull, sql } from 'drizzle-orm'
import { type Database, retriedOnConflict } from '../db/client.js'
import { identities, oneTimeTokens, sessions, users, type UserRow } from '../db/schema.js'
import { rfc3339FromPostgres, timestampText } from '../db/timestamps.js'
import { isUniqueViolation } from '../db/errors.js'
import { problem } from '../errors.js'
import type { ListRequest, PagedList, Position } from '../lib/paging.js'
import { type Role, type User, type UserAdminPatch, UserListQuery, type UserSelfPatch } from '../schemas/users.js'
import { createInbox, recordAccountDeletion } from './projects.js'
import { revokeAllRefreshTokens } from './refresh-tokens.js'

/** The one mapper from a users row to the API's User: the password hash stays behind. */
export function toUser (row: UserRow): User {
  return {
    id: row.id,
    username: row.username,
    email: row.email,
    email_verified: row.emailVerified,
    display_name: row.displayName,
    role: row.role,
    disabled: row.disabled,
    mfa_enabled: row.mfaEnabled,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  }
}

/** An account made with a password, or by single sign-on with the identity it is linked to. */
export type NewAccount = { username: string, email?: string | undefined } & (
  | { passwordHash: string, role?: Role }
  | { identity: { issuer: string, subject: string, email: string | null }, emailVerified: boolean }
)

/** What authentication needs to know about a token's subject on every request. */
export interface AuthState {
  role: Role
  disabled: boolean
  passwordChangedAt: Date
}

/**
 * The user list, as paging (src/lib/paging.ts) declares it: no filters, one order — newest first,
 * over (created_at, id), the index users_created_at_id_idx.
 */
export const userList: PagedList<Record<never, never>, '-created_at'> = {
  filters: {},
  defaultSort: '-created_at',
  defaultLimit: UserListQuery.properties.limit.default as number,
}

/**
 * Within a transaction: refuses (409) when `id` is the only active admin. Locking every active
 * admin row serialises concurrent demotions, so two admins cannot demote each other at once.
 */
async function assertNotLastAdmin (tx: Database, id: string): Promise<void> {
  const admins = await tx.select({ id: users.id }).from(users)
    .where(and(eq(users.role, 'admin'), eq(users.disabled, false))).for('update')
  if (admins.length === 1 && admins[0]!.id === id) {
    throw problem('LAST_ADMIN', 'This is the last active admin: promote another user first.')
  }
}

/**
 * Within a transaction: sets a new password and ends every way in that came before it — access
 * tokens issued earlier are refused (`password_changed_at`), refresh tokens revoked, web sessions
 * ended — as a password change and a reset both do.
 */
export async function replacePassword (tx: Database, id: string, passwordHash: string): Promise<void> {
  await tx.update(users).set({ passwordHash, passwordChangedAt: sql`now()`, updatedAt: sql`now()` }).where(eq(users.id, id))
  await revokeAllRefreshTokens(tx, id)
  // A login waiting for its second factor, and a reset link, were both begun under the old password.
  await tx.update(oneTimeTokens).set({ usedAt: sql`now()` })
    .where(and(eq(oneTimeTokens.userId, id), inArray(oneTimeTokens.purpose, ['mfa_login', 'password_reset']), isNull(oneTimeTokens.usedAt)))
  await tx.update(sessions).set({ expiresAt: sql`now()`, data: {} }).where(and(eq(sessions.userId, id), sql`${sessions.expiresAt} > now()`))
}

export function createUsersRepository (db: Database) {
  return {
    /**
     * Creates the account and, in the same transaction, its Inbox — and for single sign-on its
     * linked identity, with no password and the email as verified as the provider says.
     */
    async create (input: NewAccount): Promise<UserRow> {
      try {
        return await db.transaction(async (tx) => {
          const [row] = await tx.insert(users).values({
            username: input.username,
            passwordHash: 'passwordHash' in input ? input.passwordHash : null,
            email: input.email ?? null,
            emailVerified: 'identity' in input && input.emailVerified,
            role: 'role' in input ? input.role ?? 'user' : 'user',
          }).returning()
          await createInbox(tx, row!.id)
          if ('identity' in input) await tx.insert(identities).values({ ...input.identity, userId: row!.id })
          return row!
        })
      } catch (err) {
        if (isUniqueViolation(err, 'users_username_lower_key')) throw problem('USERNAME_TAKEN', `The username "${input.username}" is taken.`)
        throw err
      }
    },

    /** Creates the user unless one with that username exists; true when it was created. */
    async createIfAbsent (input: { username: string, passwordHash: string, role: Role }): Promise<boolean> {
      return await db.transaction(async (tx) => {
        const rows = await tx.insert(users).values(input).onConflictDoNothing().returning({ id: users.id })
        if (rows.length === 1) await createInbox(tx, rows[0]!.id)
        return rows.length === 1
      })
    },

    async findByUsername (username: string): Promise<UserRow | undefined> {
      const [row] = await db.select().from(users).where(sql`lower(${users.username}) = lower(${username})`).limit(1)
      return row
    },

    async findById (id: string): Promise<UserRow | undefined> {
      const [row] = await db.select().from(users).where(eq(users.id, id)).limit(1)
      return row
    },

    /** The usernames of the given accounts, by id, in one query (deleted ones are left out). */
    async usernames (ids: string[]): Promise<Map<string, string>> {
      if (ids.length === 0) return new Map()
      const rows = await db.select({ id: users.id, username: users.username }).from(users).where(inArray(users.id, ids))
      return new Map(rows.map((row) => [row.id, row.username]))
    },

    async authState (id: string): Promise<AuthState | undefined> {
      const [row] = await db.select({ role: users.role, disabled: users.disabled, passwordChangedAt: users.passwordChangedAt })
        .from(users).where(eq(users.id, id)).limit(1)
      return row
    },

    /**
     * Newest first, and where the next page starts (null on the last page). A position's time is
     * text with microseconds, because a JS Date would round it to milliseconds and skip users
     * created within the same millisecond.
     */
    async list (request: ListRequest<Record<never, never>, '-created_at'>): Promise<{ items: User[], next: Position | null }> {
      const { after, limit } = request
      const rows = await db.select({
        ...getTableColumns(users),
        cursorTime: timestampText<string>(users.createdAt, 'cursor_time'),
      }).from(users)
        .where(after === undefined ? undefined : sql`(${users.createdAt}, ${users.id}) < (${after[0]}::timestamptz, ${after[1]}::uuid)`)
        .orderBy(desc(users.createdAt), desc(users.id))
        .limit(limit + 1)
      const last = rows.length > limit ? rows[limit - 1] : undefined
      return {
        items: rows.slice(0, limit).map(toUser),
        next: last === undefined ? null : [rfc3339FromPostgres(last.cursorTime), last.id],
      }
    },

    async updateProfile (id: string, patch: UserSelfPatch): Promise<UserRow | undefined> {
      const [row] = await db.update(users).set({
        ...(patch.display_name !== undefined ? { displayName: patch.display_name } : {}),
        // A new address is unproven until its own link is followed.
        ...(patch.email !== undefined ? { email: patch.email, emailVerified: sql`${users.emailVerified} and ${users.email} is not distinct from ${patch.email}` } : {}),
        updatedAt: sql`now()`,
      }).where(eq(users.id, id)).returning()
      return row
    },

    /** Stores a hash made with current parameters; not a password change, so tokens stay valid. */
    async replacePasswordHash (id: string, passwordHash: string): Promise<void> {
      await db.update(users).set({ passwordHash }).where(eq(users.id, id))
    },

    /** A new password: every earlier sign-in ends (see replacePassword). */
    async changePassword (id: string, passwordHash: string): Promise<void> {
      await db.transaction(async (tx) => { await replacePassword(tx, id, passwordHash) })
    },

    /** An admin's change of role or status; disabling revokes the user's refresh tokens. */
    async adminUpdate (id: string, patch: UserAdminPatch): Promise<UserRow | undefined> {
      return await db.transaction(async (tx) => {
        if (patch.role === 'user' || patch.disabled === true) await assertNotLastAdmin(tx, id)
        const [row] = await tx.update(users).set({
          ...(patch.role !== undefined ? { role: patch.role } : {}),
          ...(patch.disabled !== undefined ? { disabled: patch.disabled } : {}),
          updatedAt: sql`now()`,
        }).where(eq(users.id, id)).returning()
        if (row?.disabled === true) await revokeAllRefreshTokens(tx, id)
        return row
      })
    },

    /**
     * Deletes the user and, by cascade in the same statement, everything they own: the projects they
     * own with their tasks, their memberships elsewhere (their tasks there stay, `created_by` null).
     */
    async delete (id: string): Promise<boolean> {
      // Its cascade crosses other writers' locks in the order the foreign keys take them: lost to a
      // deadlock, it rolled back and runs again.
      return await retriedOnConflict(async () => await db.transaction(async (tx) => {
        await assertNotLastAdmin(tx, id)
        await recordAccountDeletion(tx, id)
        const rows = await tx.delete(users).where(eq(users.id, id)).returning({ id: users.id })
        return rows.length === 1
      }))
    },
  }
}

export type UsersRepository = ReturnType<typeof createUsersRepository>
