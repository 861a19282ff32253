import { type Static, Type } from '@sinclair/typebox'
import { Nullable, Timestamp, Uuid } from './common.js'

const identityExample = {
  id: '3f6c1a2b-9d4e-4f70-8a1b-2c3d4e5f6a7b',
  issuer: 'https://accounts.example.com',
  subject: '248289761001',
  email: 'alice@example.com',
  created_at: '2026-01-15T09:30:00.000Z',
}

export const Identity = Type.Object({
  id: Uuid,
  issuer: Type.String({ description: 'The OpenID provider\'s `iss`.', example: identityExample.issuer }),
  subject: Type.String({ description: 'The provider\'s `sub`: who you are there. With `issuer`, the only thing single sign-on matches on.', example: identityExample.subject }),
  email: Nullable(Type.String(), { description: 'The address the provider gave when the identity was linked, for you to tell identities apart.', example: identityExample.email }),
  created_at: Timestamp,
}, { $id: 'Identity', title: 'Identity', description: 'An account of an OpenID provider that signs in to yours.', example: identityExample })
export type Identity = Static<typeof Identity>

export const IdentityList = Type.Object({
  items: Type.Array(Type.Ref(Identity)),
}, { $id: 'IdentityList', title: 'IdentityList', description: 'Your linked identities, oldest first.', example: { items: [identityExample] } })
export type IdentityList = Static<typeof IdentityList>

export const OidcAuthorizeQuery = Type.Object({
  redirect_uri: Type.Optional(Type.String({ maxLength: 2000, description: 'Where the sign-in ends, with `code` or `error`: exactly one of `OIDC_ALLOWED_REDIRECTS`. Required.', example: 'https://app.example.com/signed-in' })),
  state: Type.Optional(Type.String({ maxLength: 500, description: 'Your own value, handed back unchanged with the result (RFC 6749 §4.1.1): check it there, so that nobody can make you finish a sign-in you did not start.', example: 'k3J9x0aQ' })),
}, { additionalProperties: false })
export type OidcAuthorizeQuery = Static<typeof OidcAuthorizeQuery>

export const OidcCallbackQuery = Type.Object({
  state: Type.Optional(Type.String({ maxLength: 500, description: 'Ours, as given to the provider.' })),
  code: Type.Optional(Type.String({ maxLength: 2000, description: 'The provider\'s authorization code.' })),
  error: Type.Optional(Type.String({ maxLength: 200, description: 'The provider\'s error, when the sign-in failed there.' })),
}, { additionalProperties: true })
