import { type Static, Type } from '@sinclair/typebox'
import { Email, Password, Username } from './users.js'

export const SignupRequest = Type.Object({
  username: Username,
  password: Password,
  email: Type.Optional(Email),
}, { $id: 'SignupRequest', title: 'SignupRequest', additionalProperties: false })
export type SignupRequest = Static<typeof SignupRequest>

export const LoginRequest = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 32, example: 'alice' }),
  password: Type.String({ minLength: 1, maxLength: 128, example: 'correct horse battery staple' }),
}, { $id: 'LoginRequest', title: 'LoginRequest', additionalProperties: false })
export type LoginRequest = Static<typeof LoginRequest>

export const TokenPair = Type.Object({
  access_token: Type.String({ description: 'JWT to send as `Authorization: Bearer …`.', example: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl' }),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'Seconds until the access token expires.', example: 900 }),
  refresh_token: Type.String({ description: 'Opaque token for `POST /v1/auth/refresh`; single use, rotated on every refresh.', example: 'rt_2kq3T9yY5b0Xc8mJ1vH6wN4pLsQeRzAf' }),
}, { $id: 'TokenPair', title: 'TokenPair' })
export type TokenPair = Static<typeof TokenPair>
