import { isDeepStrictEqual } from 'node:util'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { apiDescription, apiVersion } from '../../openapi-info.js'
import { responseHeaders } from '../../schemas/common.js'
import { namedEnums } from '../../schemas/index.js'
import { scopes } from '../../schemas/scopes.js'
import { documentSecurityHeaders } from './helmet.js'

type JsonObject = Record<string, unknown>

/** A TypeBox schema as plain JSON (without TypeBox's symbol keys), for comparisons and the document. */
const plain = (schema: unknown): JsonObject => JSON.parse(JSON.stringify(schema)) as JsonObject

/** Each response header as an OpenAPI header object: its description beside its schema. */
const headerComponents = Object.fromEntries(Object.entries(responseHeaders).map(([name, { description, ...schema }]) => [name, { description, schema: plain(schema) }]))
const headerNames = new Map(Object.keys(responseHeaders).map((name) => [name.toLowerCase(), name]))

/** A response's header declaration replaced by a reference to its component. */
function headerReference (name: string): JsonObject {
  const component = headerNames.get(name.toLowerCase())
  if (component === undefined) throw new Error(`The response header ${name} is not in responseHeaders (src/schemas/common.ts)`)
  return { $ref: `#/components/headers/${component}` }
}

const enumTitles = new Set(namedEnums.map((schema) => schema.title!))

/**
 * `node` with every inline copy of a named enum (a schema carrying its `title`) replaced by a
 * reference to the enum's component, which a copy may differ from in its description only.
 * Examples are values, not schemas, so they are left alone.
 */
function referToNamedEnums (node: unknown, components: JsonObject): unknown {
  if (Array.isArray(node)) return node.map((item) => referToNamedEnums(item, components))
  if (typeof node !== 'object' || node === null) return node
  const { title, description } = node as JsonObject
  if (typeof title === 'string' && enumTitles.has(title)) {
    const component = components[title] as JsonObject
    // plain() drops the undefined descriptions, so everything else is compared.
    if (!isDeepStrictEqual(plain({ ...node, description: undefined }), plain({ ...component, description: undefined }))) {
      throw new Error(`An inline ${title} differs from the named one: ${JSON.stringify(node)}`)
    }
    return { $ref: `#/components/schemas/${title}`, ...(description !== undefined && description !== component.description ? { description } : {}) }
  }
  return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, key === 'example' || key === 'examples' ? value : referToNamedEnums(value, components)]))
}

/**
 * Any status an operation does not list. Every error leaves the server as a Problem with its
 * request id, also those found before a route is chosen (src/plugins/app/problems.ts), so clients
 * and validating proxies can type and check these too.
 */
const otherErrors = () => ({
  description: 'Any other error, for instance 400 for a request that is not valid HTTP, 408 for one not received in time, 431 for headers larger than the server accepts or 501 for an unknown method.',
  headers: { 'x-request-id': headerReference('X-Request-Id') },
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
})

/**
 * What fastify-swagger cannot write itself: responses refer to their headers' components, schemas
 * to the named enums they use inline (so generated clients get one type for each), and every
 * operation declares the errors it does not list.
 */
function referToComponents (document: JsonObject): JsonObject {
  const paths = document.paths as Record<string, Record<string, { responses: Record<string, { headers?: JsonObject }> }>>
  for (const operation of Object.values(paths).flatMap((item) => Object.values(item))) {
    for (const response of Object.values(operation.responses)) {
      if (response.headers === undefined) continue
      response.headers = Object.fromEntries(Object.keys(response.headers).map((name) => [name, headerReference(name)]))
    }
    operation.responses.default = otherErrors()
  }
  const schemas = (document.components as { schemas: JsonObject }).schemas
  for (const [name, schema] of Object.entries(schemas)) {
    if (!enumTitles.has(name)) schemas[name] = referToNamedEnums(schema, schemas)
  }
  return { ...document, paths: referToNamedEnums(paths, schemas) }
}

/**
 * OpenAPI 3.1 from the route schemas; named schemas, enums and response headers become components
 * referenced by `$ref`, so generated clients get named types.
 * @see https://github.com/fastify/fastify-swagger
 */
async function swaggerPlugin (app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Tasks API',
        version: apiVersion,
        description: apiDescription,
        contact: { name: 'Tasks API maintainers' },
        license: { name: 'MIT', identifier: 'MIT' },
      },
      // Relative: the document describes whichever host serves it, so /docs works behind any proxy.
      servers: [{ url: '/', description: 'The server that serves this document' }],
      tags: [
        { name: 'auth', description: 'Sign up, sign in and manage tokens.' },
        { name: 'users', description: 'Your account, and user administration for admins.' },
        { name: 'api-keys', description: 'Keys for integrations: a subset of your scopes, shown once, revocable.' },
        { name: 'tasks', description: 'The tasks of every project you are a member of: create, list, filter, search, assign, move, update, delete.' },
        { name: 'projects', description: 'Projects and sharing: your Inbox and the projects you own or were added to, their members and roles.' },
        { name: 'events', description: 'The change feed: every change to your tasks, projects and memberships, in an order that never skips or repeats, polled or as a live stream.' },
        { name: 'webhooks', description: 'Endpoints that are sent your projects\' events as they happen, signed per Standard Webhooks, with retries and a log of every attempt.' },
        { name: 'health', description: 'Liveness and readiness for orchestrators and load balancers.' },
      ],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'Access token from `POST /v1/auth/login` (then `POST /v1/auth/login/mfa` when two-factor is on) or `/v1/auth/token`. Accounts with two-factor on cannot use the password flow below: they log in with those two calls and paste the `access_token` here.' },
          oauth2: {
            type: 'oauth2',
            description: 'OAuth2 password flow, for the Authorize dialog of /docs. Not for accounts with two-factor on: the password grant cannot carry a code (`invalid_grant`). Those users log in with `POST /v1/auth/login` and `POST /v1/auth/login/mfa` and paste the `access_token` into **bearerAuth** instead.',
            flows: {
              password: {
                tokenUrl: '/v1/auth/token',
                refreshUrl: '/v1/auth/token',
                scopes: Object.fromEntries(scopes.map((scope) => [scope.name, scope.description])),
              },
            },
          },
          apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'An API key from `POST /v1/api-keys`, for integrations.' },
        },
        headers: headerComponents,
        schemas: Object.fromEntries(namedEnums.map((schema) => [schema.title!, plain(schema)])),
      },
    },
    transformObject: (document) => referToComponents((document as { openapiObject: JsonObject }).openapiObject),
    refResolver: {
      // Name components after the schemas' $id instead of "def-N".
      buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`),
    },
  })

  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { deepLinking: true, persistAuthorization: false, displayRequestDuration: true, tryItOutEnabled: true },
    staticCSP: false,
    // The explorer's pages are documents; its static files keep the API's headers (CSP does not apply to them).
    uiHooks: { onRequest: documentSecurityHeaders },
  })

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}

export default fp(swaggerPlugin, { name: 'swagger' })
