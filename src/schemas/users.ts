import { type Static, Type } from '@sinclair/typebox'
import { Nullable, Page, Timestamp, Uuid } from './common.js'

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
  title: 'Role',
  description: '`admin` may manage other users and holds the `admin` scope.',
  example: 'user',
})
export type Role = Static<typeof Role>

const userExample = {
  id: '0b6f8d1c-2f4e-4a7b-9c3d-5e6f7a8b9c0d',
  username: 'alice',
  email: 'alice@example.com',
  email_verified: true,
  display_name: 'Alice Liddell',
  role: 'user',
  disabled: false,
  mfa_enabled: false,
  created_at: '2026-11-23T09:30:00.000Z',
  updated_at: '2026-11-23T09:30:00.000Z',
}

export const User = Type.Object({
  id: Uuid,
  username: Username,
  email: Nullable(Email),
  email_verified: Type.Boolean({ description: 'Whether `email` was proven by following a mailed link (`POST /v1/users/me/email/verification`). A forgotten password can be reset only through a verified address. Changing the email clears it.', example: true }),
  display_name: Nullable(DisplayName),
  role: Role,
  disabled: Type.Boolean({ description: 'A disabled user cannot sign in; their tokens and keys stop working.', example: false }),
  mfa_enabled: Type.Boolean({ description: 'Whether logging in also takes a TOTP code or a recovery code (`POST /v1/auth/login/mfa`). API keys are unaffected.', example: false }),
  created_at: Timestamp,
  updated_at: Timestamp,
}, { $id: 'User', title: 'User', description: 'A user account. The password hash never leaves the server.', example: userExample })
export type User = Static<typeof User>

export const UserSelfPatch = Type.Object({
  display_name: Type.Optional(Nullable(DisplayName)),
  email: Type.Optional(Nullable(Email)),
}, {
  $id: 'UserSelfPatch',
  title: 'UserSelfPatch',
  description: 'Fields of your own account you may change; `null` clears one, an absent field stays as it is. A different `email` is unverified until its link is followed.',
  additionalProperties: false,
  example: { display_name: 'Alice Liddell', email: 'alice@example.com' },
})
export type UserSelfPatch = Static<typeof UserSelfPatch>

export const PasswordChange = Type.Object({
  current_password: Type.String({ minLength: 1, maxLength: 128, example: 'correct horse battery staple' }),
  new_password: Password,
}, {
  $id: 'PasswordChange',
  title: 'PasswordChange',
  additionalProperties: false,
  example: { current_password: 'correct horse battery staple', new_password: 'a new long passphrase' },
})
export type PasswordChange = Static<typeof PasswordChange>

export const UserAdminPatch = Type.Object({
  role: Type.Optional(Role),
  disabled: Type.Optional(Type.Boolean({ description: 'Disabling revokes the user\'s refresh tokens at once; access tokens and API keys stop working within 60 s.', example: true })),
}, {
  $id: 'UserAdminPatch',
  title: 'UserAdminPatch',
  description: 'What an admin may change about a user. The last active admin cannot be demoted or disabled (409).',
  additionalProperties: false,
  example: { disabled: true },
})
export type UserAdminPatch = Static<typeof UserAdminPatch>

export const UserListQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Page size.', example: 20 }),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'The opaque `next_cursor` of the previous page, e.g. `eyJjIjoiMjAyNi0xMS0yM1QwOTozMDowMC4wMDBaIn0.k3Jx`.' })),
}, { additionalProperties: false })
export type UserListQuery = Static<typeof UserListQuery>

export const UserPage = Page(User, {
  nextCursor: { description: 'Pass as `cursor` for the next page; null on the last page.', example: null },
  $id: 'UserPage',
  title: 'UserPage',
  description: 'Users, newest first (ties broken by id).',
  example: { items: [userExample], next_cursor: null },
})
export type UserPage = Static<typeof UserPage>
