import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { apiDescription, apiVersion } from '../../openapi-info.js'
import { documentSecurityHeaders } from './helmet.js'

/**
 * OpenAPI 3.1 from the route schemas; named schemas become `components.schemas` and are referenced
 * by `$ref`, so generated clients get named types.
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
        { name: 'tasks', description: 'Your tasks: create, list, filter, search, update, delete.' },
        { name: 'health', description: 'Liveness and readiness for orchestrators and load balancers.' },
      ],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'Access token from `POST /v1/auth/login` or `/v1/auth/token`.' },
          oauth2: {
            type: 'oauth2',
            description: 'OAuth2 password flow, for the Authorize dialog of /docs.',
            flows: {
              password: {
                tokenUrl: '/v1/auth/token',
                refreshUrl: '/v1/auth/token',
                scopes: { 'tasks:read': 'Read your tasks', 'tasks:write': 'Create, change and delete your tasks', admin: 'Manage users (admins only)' },
              },
            },
          },
          apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'An API key from `POST /v1/api-keys`, for integrations.' },
        },
      },
    },
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
