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

/** SHA-256 of a certificate's DER encoding, as `openssl x509 -fingerprint -sha256` prints it or without the colons. */
const ClientCertSha256 = Type.String({ pattern: '^[0-9A-Fa-f]{2}(:?[0-9A-Fa-f]{2}){31}$', example: '3b:0f:7e:9c:1d:55:a2:4e:6f:80:91:c2:d3:e4:f5:06:17:28:39:4a:5b:6c:7d:8e:9f:a0:b1:c2:d3:e4:f5:06' })

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
  client_cert_sha256: Type.Optional(Nullable(ClientCertSha256, { description: 'Binds the key to a client certificate: the key then works only on a TLS connection that presents this certificate, verified (the server\'s own TLS with `TLS_CLIENT_CA`, or, with `TRUST_PROXY`, a proxy that verified it and forwards its fingerprint); elsewhere it is refused like an unknown key. The SHA-256 of the certificate (DER), hex, with or without colons, e.g. from `openssl x509 -in client.pem -noout -fingerprint -sha256`. Null or absent: any connection.' })),
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
  client_cert_sha256: null,
}

const apiKeyFields = {
  id: Uuid,
  name: Type.String({ example: 'CI exporter' }),
  prefix: Type.String({ description: 'The first characters of the key, to recognise it.', example: 'tk_Jx8f2Lq0' }),
  scopes: Type.Array(ApiKeyScope, { example: exampleScopes }),
  expires_at: Nullable(Timestamp),
  last_used_at: Nullable(Timestamp, { description: 'When the key last authenticated a request; written at most once a minute.' }),
  created_at: Timestamp,
  client_cert_sha256: Nullable(Type.String({ pattern: '^[0-9a-f]{64}$', example: '3b0f7e9c1d55a24e6f8091c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f506' }), { description: 'The client certificate the key is bound to (SHA-256, lowercase hex without colons), or null when it works on any connection.' }),
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
