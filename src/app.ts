import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Config } from './config.js'
import type { Keyring } from './lib/keys.js'
import type { DatabaseHandle } from './db/client.js'
import { problem } from './errors.js'
import { AccessLog } from './access-log.js'
import { requestLoggerFactory } from './request-logger.js'
import { sharedSchemas } from './schemas/index.js'
import swagger from './plugins/external/swagger.js'
import helmet from './plugins/external/helmet.js'
import cors from './plugins/external/cors.js'
import jwt from './plugins/external/jwt.js'
import rateLimit from './plugins/external/rate-limit.js'
import metrics from './plugins/external/metrics.js'
import tracing from './plugins/external/tracing.js'
import underPressure from './plugins/external/under-pressure.js'
import problems, { clientErrorHandler, frameworkErrorHandler, hasEmptyParameter, MAX_PARAM_LENGTH, noRoute, pathOf } from './plugins/app/problems.js'
import { installSerializers } from './plugins/app/serialization.js'
import { installValidators } from './plugins/app/validation.js'
import database from './plugins/app/database.js'
import repositories from './plugins/app/repositories.js'
import authCache from './plugins/app/auth-cache.js'
import apiKeyUsage from './plugins/app/api-key-usage.js'
import tokenIssuer from './plugins/app/token-issuer.js'
import authenticate from './plugins/app/authenticate.js'
import callerRateLimit from './plugins/app/caller-rate-limit.js'
import authorize from './plugins/app/authorize.js'
import loginThrottle from './plugins/app/login-throttle.js'
import credentials from './plugins/app/credentials.js'
import singleSignOn from './plugins/app/single-sign-on.js'
import adminBootstrap from './plugins/app/admin-bootstrap.js'
import healthRoutes from './routes/health/index.js'
import wellKnownRoutes from './routes/well-known/index.js'
import { tlsServerFactory } from './lib/tls-server.js'
import { malformedQuery, parseQuery } from './lib/query-string.js'
import authRoutes from './routes/auth/index.js'
import usersRoutes from './routes/users/index.js'
import accountSecurityRoutes from './routes/account-security/index.js'
import apiKeysRoutes from './routes/api-keys/index.js'
import tasksRoutes from './routes/tasks/index.js'
import projectsRoutes from './routes/projects/index.js'
import eventsRoutes from './routes/events/index.js'
import housekeeping from './plugins/app/housekeeping.js'
import feedSignal from './plugins/app/feed-signal.js'
import eventStreams from './plugins/app/event-streams.js'
import webhookDelivery from './plugins/app/webhook-delivery.js'
import mailer from './plugins/app/mailer.js'
import accountMail from './plugins/app/account-mail.js'
import webhooksRoutes from './routes/webhooks/index.js'
import webPages from './web/plugin.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Set when shutdown begins, so load balancers stop sending traffic before the server closes. */
    shuttingDown: boolean
    /** The service's keys, one per purpose (src/lib/keys.ts). */
    keys: Keyring
  }
}

export interface AppOptions {
  config: Config
  database: DatabaseHandle
  /** Leave the database open when the app closes (tests build many apps over one database). */
  keepDatabaseOpen?: boolean
  /** The service's keys (see `resolveKeyring`). */
  keys: Keyring
  /** Pino options or `false`; the server passes its logger settings, tests usually none. */
  logger?: FastifyServerOptions['logger']
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/**
 * Where a string PostgreSQL `text` cannot hold (one with a NUL character) is, as a JSON pointer,
 * or undefined: such input is refused as a 400 naming the field instead of failing as a 500.
 */
function nulPointer (value: unknown, at = ''): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? at : undefined
  if (typeof value !== 'object' || value === null) return undefined
  for (const [key, item] of Object.entries(value)) {
    const found = nulPointer(item, `${at}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`)
    if (found !== undefined) return found
  }
  return undefined
}

const nulProblem = (part: 'body' | 'query' | 'path', path: string) =>
  problem('VALIDATION_FAILED', `${part}${path} must not contain the NUL character (\\u0000).`, {
    errors: [{ in: part, path, message: 'must not contain the NUL character (\\u0000)' }],
  })

/**
 * The whole service as one Fastify instance: used by the server, the tests and the OpenAPI
 * writer alike, so all three see the very same routes, schemas and hooks.
 */
export async function buildApp (options: AppOptions): Promise<FastifyInstance> {
  const { config } = options
  const tlsFactory = tlsServerFactory(config)
  const app = Fastify({
    logger: options.logger ?? false,
    logController: new AccessLog(),
    // Without a logger, Fastify hands every request the null logger itself.
    ...(options.logger ? { childLoggerFactory: requestLoggerFactory } : {}),
    // Echo a caller's request id when it is sane, so one id follows a request across services.
    genReqId: (req) => {
      const incoming = req.headers['x-request-id']
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID()
    },
    bodyLimit: config.BODY_LIMIT,
    trustProxy: config.TRUST_PROXY,
    // A client that trickles its request is cut off (408) instead of holding a socket forever.
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    http: { headersTimeout: Math.min(5_000, config.REQUEST_TIMEOUT_MS), connectionsCheckingInterval: 1_000 } as object,
    keepAliveTimeout: 72_000,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // During shutdown, requests already on open connections are still served: a 503 here would
    // fail a request the server had accepted.
    return503OnClosing: false,
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: MAX_PARAM_LENGTH, querystringParser: parseQuery },
    // Errors raised before a route runs answer from the catalogue too.
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
    ...(tlsFactory === undefined ? {} : { serverFactory: tlsFactory }),
  }).withTypeProvider<TypeBoxTypeProvider>()

  // First, so that the request's span holds every hook and handler after it.
  if (config.OTEL_EXPORTER_OTLP_ENDPOINT !== undefined) {
    await app.register(tracing)
    options.database.traceStatements()
  }
  app.decorate('shuttingDown', false)
  app.decorate('keys', options.keys)
  for (const schema of sharedSchemas) app.addSchema(schema)
  installValidators(app, sharedSchemas)
  installSerializers(app, sharedSchemas)

  // Hooks on every request take callbacks: an async hook costs a promise per request.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    // Once shutdown begins, every answer closes its connection, so clients reconnect elsewhere.
    if (app.shuttingDown) reply.header('connection', 'close')
    // API responses are per caller: never stored by shared caches or browsers.
    const url = request.url
    if (url.startsWith('/v1/') || (url[0] !== '/' && pathOf(url).startsWith('/v1/'))) reply.header('cache-control', 'no-store')
    // Marked by the query parser, which runs inside the router where it cannot answer.
    if ((request.query as Record<symbol, unknown>)[malformedQuery] === true) {
      return done(problem('BAD_REQUEST', 'The query string is not valid percent-encoding.'))
    }
    done(hasEmptyParameter(request.params as Record<string, unknown>) ? noRoute(request.method, url) : undefined)
  })

  // JSON bodies (and merge patches) are parsed by Fastify's own safe parser, then refused when a
  // string holds a NUL character.
  const parseJson = app.getDefaultJsonParser('error', 'error')
  // Only JSON bodies: Fastify would also accept text/plain, which no route here reads.
  app.removeContentTypeParser(['application/json', 'text/plain'])
  app.addContentTypeParser(['application/json', 'application/merge-patch+json'], { parseAs: 'string' }, (request, body, done) => {
    if (request.method !== 'PATCH' && request.headers['content-type']?.startsWith('application/merge-patch+json') === true) {
      return done(problem('UNSUPPORTED_MEDIA_TYPE', 'application/merge-patch+json is accepted by PATCH only.'), undefined)
    }
    const takesBody = request.routeOptions.schema?.body !== undefined
    // A client that labels every request JSON sends an empty DELETE that way: no body, not a bad one.
    if (!takesBody && (body as string).trim() === '') return done(null, undefined)
    void parseJson(request, body as string, (err: Error | null, value?: unknown) => {
      if (err !== null) return done(err, undefined)
      // Fields sent to an operation that reads none are refused, never silently dropped; `{}` is no field.
      if (!takesBody && !(typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0)) {
        return done(problem('VALIDATION_FAILED', 'This operation takes no request body.', {
          errors: [{ in: 'body', path: '', message: 'must be absent: this operation takes no request body' }],
        }), undefined)
      }
      const nul = (body as string).includes('\\u0000') ? nulPointer(value) : undefined
      done(nul === undefined ? null : nulProblem('body', nul), nul === undefined ? value : undefined)
    })
  })
  app.addHook('preValidation', (request, _reply, done) => {
    const inQuery = nulPointer(request.query)
    const inPath = inQuery === undefined ? nulPointer(request.params) : undefined
    done(inQuery !== undefined ? nulProblem('query', inQuery) : inPath !== undefined ? nulProblem('path', inPath) : undefined)
  })

  await app.register(problems)
  await app.register(helmet)
  await app.register(cors, { config })
  await app.register(swagger)
  await app.register(jwt, { config, secret: options.keys.tokenSigning })
  await app.register(rateLimit, { config })
  await app.register(database, { database: options.database, keepOpen: options.keepDatabaseOpen ?? false })
  await app.register(repositories, { config })
  await app.register(authCache)
  await app.register(apiKeyUsage, { config })
  await app.register(tokenIssuer, { config })
  await app.register(authenticate, { config })
  await app.register(callerRateLimit, { config })
  await app.register(authorize)
  await app.register(loginThrottle, { config })
  await app.register(credentials)
  await app.register(singleSignOn, { config })
  await app.register(adminBootstrap, { config })
  await app.register(metrics, { config })
  await app.register(underPressure, { config })
  await app.register(housekeeping, { config })
  await app.register(feedSignal, { config })
  await app.register(eventStreams, { config })
  await app.register(webhookDelivery, { config })
  await app.register(mailer, { config })
  await app.register(accountMail)

  await app.register(healthRoutes, { prefix: '/health' })
  await app.register(wellKnownRoutes, { prefix: '/.well-known' })
  await app.register(authRoutes, { prefix: '/v1/auth', config })
  await app.register(usersRoutes, { prefix: '/v1/users' })
  await app.register(accountSecurityRoutes, { prefix: '/v1/users', config })
  await app.register(apiKeysRoutes, { prefix: '/v1/api-keys' })
  await app.register(tasksRoutes, { prefix: '/v1/tasks' })
  await app.register(projectsRoutes, { prefix: '/v1/projects' })
  await app.register(eventsRoutes, { prefix: '/v1/events', config })
  await app.register(webhooksRoutes, { prefix: '/v1/webhooks', config })
  await app.register(webPages, { prefix: '/app', config })

  return app
}
