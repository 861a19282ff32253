import { type Static, Type } from '@sinclair/typebox'
import { Nullable, Timestamp, Uuid } from './common.js'

export const Username = Type.String({
  minLength: 3,
  maxLength: 32,
  pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$',
  description: 'Letters, digits, `_`, `.` and `-`, starting with a letter or digit; unique regardless of case.',
  example: 'alice',
})

/** NIST SP 800-63B: length is what matters; no composition rules. Bounded before any hashing. */
export const Password = Type.String({
  minLength: 8,
  maxLength: 128,
  description: '8 to 128 characters, not equal to the username. No composition rules (NIST SP 800-63B).',
  example: 'correct horse battery staple',
})

export const Email = Type.String({ format: 'email', maxLength: 254, example: 'alice@example.com' })

export const DisplayName = Type.String({ minLength: 1, maxLength: 100, example: 'Alice Liddell' })

export const Role = Type.Union([Type.Literal('user'), Type.Literal('admin')], {
  description: '`admin` may manage other users and holds the `admin` scope.',
  example: 'user',
})
export type Role = Static<typeof Role>

export const User = Type.Object({
  id: Uuid,
  username: Username,
  email: Nullable(Email),
  display_name: Nullable(DisplayName),
  role: Role,
  disabled: Type.Boolean({ description: 'A disabled user cannot sign in; their tokens and keys stop working.', example: false }),
  created_at: Timestamp,
  updated_at: Timestamp,
}, { $id: 'User', title: 'User', description: 'A user account. The password hash never leaves the server.' })
export type User = Static<typeof User>
