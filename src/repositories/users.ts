import { eq, sql } from 'drizzle-orm'
import type { Database } from '../db/client.js'
import { users, type UserRow } from '../db/schema.js'
import { isUniqueViolation } from '../db/errors.js'
import { problem } from '../errors.js'
import type { Role, User } from '../schemas/users.js'

/** The one mapper from a users row to the API's User: the password hash stays behind. */
export function toUser (row: UserRow): User {
  return {
    id: row.id,
    username: row.username,
    email: row.email,
    display_name: row.displayName,
    role: row.role,
    disabled: row.disabled,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  }
}

/** What authentication needs to know about a token's subject on every request. */
export interface AuthState {
  role: Role
  disabled: boolean
  passwordChangedAt: Date
}

export function createUsersRepository (db: Database) {
  return {
    async create (input: { username: string, passwordHash: string, email?: string | undefined, role?: Role }): Promise<UserRow> {
      try {
        const [row] = await db.insert(users).values({
          username: input.username,
          passwordHash: input.passwordHash,
          email: input.email ?? null,
          role: input.role ?? 'user',
        }).returning()
        return row!
      } catch (err) {
        if (isUniqueViolation(err, 'users_username_lower_key')) throw problem('USERNAME_TAKEN', `The username "${input.username}" is taken.`)
        throw err
      }
    },

    async findByUsername (username: string): Promise<UserRow | undefined> {
      const [row] = await db.select().from(users).where(sql`lower(${users.username}) = lower(${username})`).limit(1)
      return row
    },

    async findById (id: string): Promise<UserRow | undefined> {
      const [row] = await db.select().from(users).where(eq(users.id, id)).limit(1)
      return row
    },

    async authState (id: string): Promise<AuthState | undefined> {
      const [row] = await db.select({ role: users.role, disabled: users.disabled, passwordChangedAt: users.passwordChangedAt })
        .from(users).where(eq(users.id, id)).limit(1)
      return row
    },

    /** Stores a hash made with current parameters; not a password change, so tokens stay valid. */
    async replacePasswordHash (id: string, passwordHash: string): Promise<void> {
      await db.update(users).set({ passwordHash }).where(eq(users.id, id))
    },
  }
}

export type UsersRepository = ReturnType<typeof createUsersRepository>
