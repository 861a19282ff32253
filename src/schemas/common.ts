import { type ArrayOptions, type SchemaOptions, type Static, type TSchema, Type } from '@sinclair/typebox'

/** `T | null` as a JSON Schema type array: compact in OpenAPI 3.1 and fast to serialize. */
export function Nullable<T extends TSchema> (schema: T, options: SchemaOptions = {}) {
  const { type, ...rest } = schema as unknown as { type: string }
  return Type.Unsafe<Static<T> | null>({ ...rest, ...options, type: [type, 'null'] })
}

/**
 * One page of a keyset-paged list (src/lib/paging.ts): `items` (by `$ref` to the item's schema)
 * and `next_cursor`, null on the last page. Every paged list's response is one of these.
 */
export function Page<T extends TSchema> (item: T, options: SchemaOptions & {
  /** Options of the `items` array (a description of the order, say). */
  items?: ArrayOptions
  nextCursor: { description: string, example: string | null }
}) {
  const { items, nextCursor, ...page } = options
  return Type.Object({
    items: Type.Array(Type.Ref(item), items),
    next_cursor: Nullable(Type.String(), nextCursor),
  }, page)
}

export const Uuid = Type.String({ format: 'uuid', example: '5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d' })

export const Timestamp = Type.String({ format: 'date-time', description: 'RFC 3339 timestamp, UTC', example: '2026-11-23T09:30:00.000Z' })

export const IdParams = Type.Object({
  id: Type.String({ format: 'uuid', description: 'The resource id (a UUID). A malformed id is a 400.', example: '5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d' }),
}, { additionalProperties: false })
export type IdParams = Static<typeof IdParams>

export const ValidationIssue = Type.Object({
  in: Type.Union([Type.Literal('body'), Type.Literal('query'), Type.Literal('path'), Type.Literal('header')], {
    description: 'Which part of the request the problem is in.',
    example: 'body',
  }),
  path: Type.String({ description: 'JSON pointer (RFC 6901) into that part of the request: `/title` is a field, the empty string the whole body or part.', example: '/title' }),
  message: Type.String({ example: 'must NOT have fewer than 1 characters' }),
}, {
  $id: 'ValidationIssue',
  title: 'ValidationIssue',
  example: { in: 'body', path: '/title', message: 'must NOT have fewer than 1 characters' },
})

export const Problem = Type.Object({
  type: Type.String({ description: 'A URI naming the problem type; one per `code`.', example: 'urn:tasks-api:problem:validation-failed' }),
  title: Type.String({ description: 'Short, human-readable summary of the problem type.', example: 'Validation failed' }),
  status: Type.Integer({ minimum: 400, maximum: 599, example: 400 }),
  detail: Type.Optional(Type.String({ description: 'What went wrong in this occurrence.', example: 'body/title must NOT have fewer than 1 characters' })),
  instance: Type.String({ description: 'The request path this problem occurred on; `urn:tasks-api:request:<request_id>` when the request was refused before its path could be used (malformed, too long, not valid HTTP), so the input is never echoed.', example: '/v1/tasks' }),
  code: Type.String({ description: 'Stable machine-readable error code from the service\'s catalogue.', example: 'VALIDATION_FAILED' }),
  request_id: Type.String({ description: 'The `X-Request-Id` of the request, for support and log search.', example: 'b3c1d2e4-5f60-4a7b-8c9d-0e1f2a3b4c5d' }),
  errors: Type.Optional(Type.Array(Type.Ref(ValidationIssue), { description: 'Present on validation failures: one entry per problem found.' })),
  error: Type.Optional(Type.String({ description: 'RFC 6749 error code; present on the OAuth2 token endpoint only.', example: 'invalid_grant' })),
  error_description: Type.Optional(Type.String({ description: 'RFC 6749 error description, on the OAuth2 token endpoint where `error` alone would not say what to do (e.g. two-factor required).', example: 'This account uses two-factor authentication: log in with POST /v1/auth/login and POST /v1/auth/login/mfa, then paste the access token.' })),
  mfa_token: Type.Optional(Type.String({ description: 'With `MFA_REQUIRED` only: send it with a code to `POST /v1/auth/login/mfa` within 5 minutes. It is spent after 5 wrong codes.', example: 'mfa_Vq3l8x0Yk2pT9b7Ns1cR4dE6fG5hJ8mK0wQzXyA1B2C' })),
}, {
  $id: 'Problem',
  title: 'Problem',
  description: 'RFC 9457 problem details, sent as `application/problem+json` with every non-2xx response.',
  example: {
    type: 'urn:tasks-api:problem:validation-failed',
    title: 'Validation failed',
    status: 400,
    detail: 'body/title must NOT have fewer than 1 characters',
    instance: '/v1/tasks',
    code: 'VALIDATION_FAILED',
    request_id: 'b3c1d2e4-5f60-4a7b-8c9d-0e1f2a3b4c5d',
    errors: [{ in: 'body', path: '/title', message: 'must NOT have fewer than 1 characters' }],
  },
})
export type Problem = Static<typeof Problem>

/**
 * Every response header the API sends on purpose, by name. The OpenAPI document declares each once,
 * as `components.headers`, and responses refer to it by `$ref` (see src/plugins/external/swagger.ts);
 * routes say which headers a response carries with the helpers below.
 */
export const responseHeaders = {
  'X-Request-Id': Type.String({
    description: 'The request id: the one you sent when it is 1 to 128 letters, digits or `._:-`, else a new one. Problems repeat it as `request_id`; quote it when reporting a problem.',
    example: 'b3c1d2e4-5f60-4a7b-8c9d-0e1f2a3b4c5d',
  }),
  'RateLimit-Limit': Type.Integer({ description: 'Requests allowed per window (IETF RateLimit header fields draft).', example: 600 }),
  'RateLimit-Remaining': Type.Integer({ description: 'Requests left in the current window.', example: 599 }),
  'RateLimit-Reset': Type.Integer({ description: 'Seconds until the current window ends.', example: 60 }),
  'Retry-After': Type.Integer({ description: 'Seconds to wait before trying again.', example: 5 }),
  'WWW-Authenticate': Type.String({
    description: 'What credentials to send (RFC 6750): `Bearer realm="tasks-api"` or, for an API key, `ApiKey realm="tasks-api"`; with `error="…"` when the ones sent were refused, and on a 403 with `error="insufficient_scope"` and the missing `scope` when that is why.',
    example: 'Bearer realm="tasks-api", error="invalid_token"',
  }),
  Location: Type.String({ description: 'The URL of the created resource.', example: '/v1/tasks/5f0c6a4e-8a5b-4a53-9a8e-2a8f7f9c1b2d' }),
  ETag: Type.String({ description: 'Strong entity tag of the task\'s current version; send it back in `If-Match` or `If-None-Match`.', example: '"3"' }),
  Link: Type.String({ description: '`<…>; rel="next"`: the URL of the next page (RFC 8288), present when `next_cursor` is not null.', example: '</v1/tasks?limit=20&cursor=WyIy…>; rel="next"' }),
  'Cache-Control': Type.String({ description: 'How long the response may be cached (RFC 9111).', example: 'public, max-age=300' }),
  'Idempotent-Replayed': Type.String({ description: '`true` when this response is the replay of an earlier request with the same `Idempotency-Key`.', example: 'true' }),
}
export type ResponseHeader = keyof typeof responseHeaders

/** What @fastify/rate-limit sends on every response of a route it limits. */
export const rateLimitHeaders: readonly ResponseHeader[] = ['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset']

/** The named headers as a response's `headers`, keyed in lower case as Fastify sends them. */
function headersOf (names: readonly ResponseHeader[]): Record<string, TSchema> {
  return Object.fromEntries(names.map((name) => [name.toLowerCase(), responseHeaders[name]]))
}

// Every response carries X-Request-Id (app.ts sets it on every request), so each helper below declares it.

/** A success response with a JSON body. */
export function jsonResponse (description: string, schema: TSchema, ...headers: ResponseHeader[]) {
  return { description, headers: headersOf(['X-Request-Id', ...headers]), content: { 'application/json': { schema } } }
}

/** A success response that streams: a body of `mediaType` that never ends on its own (server-sent events). */
export function streamResponse (description: string, mediaType: string, schema: TSchema) {
  return { description, headers: headersOf(['X-Request-Id']), content: { [mediaType]: { schema } } }
}

/** An empty response (204, 304): documented with its description and headers only. */
export function noContent (description: string, ...headers: ResponseHeader[]) {
  return { ...Type.Null({ description }), headers: headersOf(['X-Request-Id', ...headers]) }
}

/** A redirect (302): documented with its description and where it goes. */
export function redirectResponse (description: string, location: string) {
  return { ...Type.Null({ description }), headers: { ...headersOf(['X-Request-Id']), location: Type.String({ description: location }) } }
}

const statusDescriptions: Record<number, string> = {
  400: 'Bad request: malformed JSON, a schema violation or a bad parameter (see `errors`).',
  401: 'Missing, malformed, expired or revoked credentials.',
  403: 'Authenticated, but the credentials lack the scope or role this operation needs, or your role in the project does not allow it (`ROLE_FORBIDDEN`).',
  404: 'No such resource, or one you may not see (someone else\'s, or in a project you are not a member of).',
  409: 'Conflict with the current state of the resource.',
  410: 'Gone: the change feed no longer reaches back to `after` (`SYNC_EXPIRED`); list the resources again and poll from the `next_after` of a fresh poll.',
  412: 'The `If-Match` precondition failed: the resource changed since you read it.',
  413: 'The request body is larger than the server accepts.',
  414: 'A path parameter is longer than the server accepts (200 characters).',
  406: 'The `Accept` header refuses every media type this operation answers with.',
  415: 'The request body is not `application/json`.',
  422: 'Well-formed, but refers to something unusable: an `Idempotency-Key` used with another request, an unknown username, an assignee who is not a member of the project, a webhook URL the service will not call (`WEBHOOK_URL_REFUSED`).',
  429: 'Rate limited: wait for `Retry-After` seconds.',
  500: 'Unexpected error; the request id identifies it in the server log.',
  503: 'The database is unavailable or the server is shutting down; retry after `Retry-After` seconds.',
}

/** Headers every problem of a status carries, whichever operation answers it. */
const problemHeaders: Record<number, ResponseHeader[]> = {
  401: ['WWW-Authenticate'],
  403: ['WWW-Authenticate'],
  429: ['Retry-After'],
  503: ['Retry-After'],
}

const ProblemRef = Type.Ref(Problem)

/** Response entries for the given error statuses, each an `application/problem+json` Problem. */
export function problemResponses<S extends number> (...statuses: S[]) {
  const responses = {} as Record<S, { description: string, headers: Record<string, TSchema>, content: { 'application/problem+json': { schema: typeof ProblemRef } } }>
  for (const status of statuses) {
    responses[status] = {
      description: statusDescriptions[status] ?? 'Error',
      headers: headersOf(['X-Request-Id', ...problemHeaders[status] ?? []]),
      content: { 'application/problem+json': { schema: ProblemRef } },
    }
  }
  return responses
}

/**
 * `responses` (a route's `schema.response`) with `headers` added to every status but those in
 * `except`. Every entry must come from the helpers above, which give each one a `headers` map.
 */
export function withHeaders<R extends object> (responses: R, headers: readonly ResponseHeader[], except: readonly number[] = []): R {
  return Object.fromEntries(Object.entries(responses).map(([status, response]: [string, { headers?: Record<string, TSchema> }]) => {
    if (except.includes(Number(status))) return [status, response]
    if (response.headers === undefined) throw new Error(`The ${status} response is not declared with jsonResponse(), noContent() or problemResponses(), so its headers cannot be documented`)
    return [status, { ...response, headers: { ...response.headers, ...headersOf(headers) } }]
  })) as R
}
