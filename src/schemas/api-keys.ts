import { type Static, type TLiteral, type TUnion, Type } from '@sinclair/typebox'
import { Nullable, Timestamp, Uuid } from './common.js'
import { type ApiKeyScope as Scope, apiKeyScopes } from './scopes.js'

/** The scopes of the examples below. */
const exampleScopes: Scope[] = ['tasks:read']

/** The scopes of src/schemas/scopes.ts that a key may carry. */
export const ApiKeyScope = Type.Union(apiKeyScopes.map((scope) => Type.Literal(scope)), {
  title: 'ApiKeyScope',
  description: 'What an API key may do: a subset of its owner\'s scopes.',
  example: exampleScopes[0],
}) as TUnion<Array<TLiteral<Scope>>>
export type ApiKeyScope = Static<typeof ApiKeyScope>

export const ApiKeyCreate = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 100, description: 'What the key is for, so you can tell keys apart.', example: 'CI exporter' }),
  scopes: Type.Array(ApiKeyScope, {
    minItems: 1,
    maxItems: apiKeyScopes.length,
    uniqueItems: true,
    description: 'A subset of your own scopes. API keys never manage keys or users.',
    example: exampleScopes,
  }),
  expires_at: Type.Optional(Nullable(Timestamp, { description: 'When the key stops working; null or absent for never. Must be in the future.' })),
}, {
  $id: 'ApiKeyCreate',
  title: 'ApiKeyCreate',
  additionalProperties: false,
  example: { name: 'CI exporter', scopes: exampleScopes, expires_at: '2027-01-01T00:00:00.000Z' },
})
export type ApiKeyCreate = Static<typeof ApiKeyCreate>

const apiKeyExample = {
  id: '7d1e2f3a-4b5c-4d6e-8f70-1a2b3c4d5e6f',
  name: 'CI exporter',
  prefix: 'tk_Jx8f2Lq0',
  scopes: exampleScopes,
  expires_at: '2027-01-01T00:00:00.000Z',
  last_used_at: null,
  created_at: '2026-11-23T09:30:00.000Z',
}

const apiKeyFields = {
  id: Uuid,
  name: Type.String({ example: 'CI exporter' }),
  prefix: Type.String({ description: 'The first characters of the key, to recognise it.', example: 'tk_Jx8f2Lq0' }),
  scopes: Type.Array(ApiKeyScope, { example: exampleScopes }),
  expires_at: Nullable(Timestamp),
  last_used_at: Nullable(Timestamp, { description: 'When the key last authenticated a request; written at most once a minute.' }),
  created_at: Timestamp,
}

export const ApiKey = Type.Object(apiKeyFields, {
  $id: 'ApiKey',
  title: 'ApiKey',
  description: 'An API key, without its secret: the key itself is shown only once, at creation.',
  example: apiKeyExample,
})
export type ApiKey = Static<typeof ApiKey>

export const ApiKeyCreated = Type.Object({
  ...apiKeyFields,
  key: Type.String({
    description: 'The secret, shown this once: send it as `X-API-Key`. Only its SHA-256 is stored.',
    example: 'tk_Jx8f2Lq0h3V6uZ9yBcE1sKd4TnWm7RpA5gXoYiQvHl2',
  }),
}, { $id: 'ApiKeyCreated', title: 'ApiKeyCreated', example: { ...apiKeyExample, key: 'tk_Jx8f2Lq0h3V6uZ9yBcE1sKd4TnWm7RpA5gXoYiQvHl2' } })
export type ApiKeyCreated = Static<typeof ApiKeyCreated>

export const ApiKeyList = Type.Object({
  items: Type.Array(Type.Ref(ApiKey)),
}, { $id: 'ApiKeyList', title: 'ApiKeyList', description: 'Your keys that are not revoked, newest first.', example: { items: [apiKeyExample] } })
export type ApiKeyList = Static<typeof ApiKeyList>
