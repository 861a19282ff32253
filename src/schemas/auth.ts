import { type Static, Type } from '@sinclair/typebox'
import { Email, Password, Username } from './users.js'
import { scopesOf } from './scopes.js'

/** The `scope` of the examples: what a user's token grants. */
const exampleScope = scopesOf('user').join(' ')

export const SignupRequest = Type.Object({
  username: Username,
  password: Password,
  email: Type.Optional(Email),
}, {
  $id: 'SignupRequest',
  title: 'SignupRequest',
  additionalProperties: false,
  example: { username: 'alice', password: 'correct horse battery staple', email: 'alice@example.com' },
})
export type SignupRequest = Static<typeof SignupRequest>

/** Bounded like Password, so an oversized password is refused before any hashing. */
const LoginPassword = Type.String({ minLength: 1, maxLength: 128, example: 'correct horse battery staple' })
const LoginUsername = Type.String({ minLength: 1, maxLength: 32, example: 'alice' })

export const LoginRequest = Type.Object({
  username: LoginUsername,
  password: LoginPassword,
}, { $id: 'LoginRequest', title: 'LoginRequest', additionalProperties: false, example: { username: 'alice', password: 'correct horse battery staple' } })
export type LoginRequest = Static<typeof LoginRequest>

const RefreshToken = Type.String({
  minLength: 1,
  maxLength: 1024,
  description: 'The opaque refresh token from a TokenPair.',
  example: 'rt_2kq3T9yY5b0Xc8mJ1vH6wN4pLsQeRzAf',
})

export const RefreshTokenRequest = Type.Object({
  refresh_token: RefreshToken,
}, { $id: 'RefreshTokenRequest', title: 'RefreshTokenRequest', additionalProperties: false, example: { refresh_token: 'rt_2kq3T9yY5b0Xc8mJ1vH6wN4pLsQeRzAf' } })
export type RefreshTokenRequest = Static<typeof RefreshTokenRequest>

/**
 * RFC 6749 §4.1.3, §4.3 and §6, form-encoded. Unrecognised parameters are ignored as §3.2 requires, and
 * `client_id`/`client_secret` are accepted and ignored: the docs explorer is a public client.
 */
export const TokenRequest = Type.Object({
  grant_type: Type.String({ minLength: 1, maxLength: 100, description: '`password`, `refresh_token` or `authorization_code`.', example: 'password' }),
  username: Type.Optional(Type.String({ maxLength: 32, description: 'With `grant_type=password`.', example: 'alice' })),
  password: Type.Optional(Type.String({ maxLength: 128, description: 'With `grant_type=password`.', example: 'correct horse battery staple' })),
  refresh_token: Type.Optional(Type.String({ maxLength: 1024, description: 'With `grant_type=refresh_token`.', example: 'rt_2kq3T9yY5b0Xc8mJ1vH6wN4pLsQeRzAf' })),
  code: Type.Optional(Type.String({ maxLength: 200, description: 'With `grant_type=authorization_code`: the one-time code a single sign-on ended with.', example: 'sso_4fJ8kQ2mZx7Lr1Tn9Wc3Yb6Hd0Ps5Ve' })),
  scope: Type.Optional(Type.String({
    maxLength: 200,
    description: 'Space-separated scopes. Unknown scopes are refused (`invalid_scope`); the token is granted every scope of your role, which the response\'s `scope` lists.',
    example: exampleScope,
  })),
  client_id: Type.Optional(Type.String({ maxLength: 200, description: 'Accepted and ignored (public client).', example: 'docs' })),
  client_secret: Type.Optional(Type.String({ maxLength: 200, description: 'Accepted and ignored (public client).', example: '' })),
}, {
  $id: 'TokenRequest',
  title: 'TokenRequest',
  additionalProperties: true,
  example: { grant_type: 'password', username: 'alice', password: 'correct horse battery staple', scope: exampleScope },
})
export type TokenRequest = Static<typeof TokenRequest>

export const TokenPair = Type.Object({
  access_token: Type.String({ description: 'JWT to send as `Authorization: Bearer …`.', example: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl' }),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'Seconds until the access token expires.', example: 900 }),
  refresh_token: Type.String({
    description: 'Opaque token for `POST /v1/auth/refresh`; single use, rotated on every refresh. Its family (this login) expires `REFRESH_TOKEN_TTL` after the login.',
    example: 'rt_2kq3T9yY5b0Xc8mJ1vH6wN4pLsQeRzAf',
  }),
  scope: Type.String({ description: 'The scopes the access token grants, space-separated (RFC 6749 §5.1).', example: exampleScope }),
}, {
  $id: 'TokenPair',
  title: 'TokenPair',
  example: {
    access_token: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl',
    token_type: 'Bearer',
    expires_in: 900,
    refresh_token: 'rt_2kq3T9yY5b0Xc8mJ1vH6wN4pLsQeRzAf',
    scope: exampleScope,
  },
})
export type TokenPair = Static<typeof TokenPair>

const PublicJwk = Type.Object({
  kty: Type.String({ description: '`OKP` (Ed25519) or `EC` (P-256).', example: 'OKP' }),
  crv: Type.String({ description: '`Ed25519` or `P-256`.', example: 'Ed25519' }),
  x: Type.String({ description: 'The public key (base64url).', example: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' }),
  y: Type.Optional(Type.String({ description: 'The second coordinate of a P-256 key (base64url).', example: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' })),
  kid: Type.String({ description: 'The key id that access tokens name in their header.', example: '2026-12' }),
  alg: Type.String({ description: 'The only algorithm this key verifies: `EdDSA` or `ES256`.', example: 'EdDSA' }),
  use: Type.Literal('sig'),
}, { title: 'PublicJwk', additionalProperties: true })

export const JsonWebKeySet = Type.Object({
  keys: Type.Array(PublicJwk, { description: 'Every key that may have signed an access token still valid: the signing key first.' }),
}, {
  $id: 'JsonWebKeySet',
  title: 'JsonWebKeySet',
  description: 'RFC 7517 JWK set of the public keys that verify this service\'s access tokens.',
  example: { keys: [{ kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo', kid: '2026-12', alg: 'EdDSA', use: 'sig' }] },
})
export type JsonWebKeySet = Static<typeof JsonWebKeySet>
