import { timingSafeEqual } from 'node:crypto'
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import client from '@platformatic/prom-client'
import type { Config } from '../../config.js'
import { problem } from '../../errors.js'

/** Operational routes that would only measure the scraper and the explorer. */
const unmeasured = (route: string) => route === '/metrics' || route === '/docs' || route.startsWith('/docs/')

/**
 * Prometheus metrics (prom-client): request count and latency histogram by route template, method
 * and status, the database pool, and process and runtime metrics. Served at GET /metrics (see
 * `metricsExposure`), behind `Authorization: Bearer <METRICS_TOKEN>` when that is set.
 * @see https://github.com/platformatic/prom-client
 */
declare module 'fastify' {
  interface FastifyInstance {
    /** The registry GET /metrics serves: plugins add their own metrics to it. */
    metricsRegistry: client.Registry
  }
}

async function metricsPlugin (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  // A registry per app: tests build many apps in one process, each starting from zero.
  const register = new client.Registry()
  app.decorate('metricsRegistry', register)
  client.collectDefaultMetrics({ register })

  const requestDuration = new client.Histogram({
    name: 'http_request_duration_seconds',
    help: 'Request duration in seconds, by method, route template and status code.',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [register],
  })
  // Fastify times every request already (`reply.elapsedTime`), so a response costs one observation
  // and no timer or per-request state of ours (fastify-metrics kept a timer per request in a
  // WeakMap). Unmatched URLs (404s) have no route and are not measured.
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url
    if (route !== undefined && request.method !== 'HEAD' && request.method !== 'OPTIONS' && !unmeasured(route)) {
      requestDuration.observe({ method: request.method, route, status_code: reply.statusCode }, reply.elapsedTime / 1000)
    }
    done()
  })

  new client.Gauge({
    name: 'db_pool_connections',
    help: 'Database connections of this instance by state (pg_stat_activity); the embedded database has one, active while in use.',
    labelNames: ['state'],
    registers: [register],
    async collect () {
      this.reset()
      const stats = await app.database.poolStats().catch(() => undefined)
      if (stats === undefined) return
      for (const [state, count] of Object.entries(stats)) this.set({ state }, count)
    },
  })
  new client.Gauge({ name: 'db_pool_max', help: 'Configured maximum of database connections per instance.', registers: [register] })
    .set(app.database.poolMax)

  const token = opts.config.METRICS_TOKEN === undefined ? undefined : Buffer.from(`Bearer ${opts.config.METRICS_TOKEN}`)
  const authorized = (authorization: string | undefined): boolean => {
    if (token === undefined) return true
    const given = Buffer.from(authorization ?? '')
    return given.length === token.length && timingSafeEqual(given, token)
  }
  const exposure = metricsExposure(opts.config)

  if (exposure === 'public') {
    app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
      if (!authorized(request.headers.authorization)) {
        throw problem('UNAUTHENTICATED', 'Send `Authorization: Bearer <METRICS_TOKEN>`.', { headers: { 'www-authenticate': 'Bearer realm="metrics"' } })
      }
      return reply.type(register.contentType).send(await register.metrics())
    })
  } else if (exposure === 'hidden') {
    app.addHook('onReady', async () => {
      app.log.warn('GET /metrics is off: in production it is served on a listener of its own (METRICS_PORT) or behind METRICS_TOKEN')
    })
  } else {
    // A listener of its own, started with the server's (tests that never listen never open it).
    const server = createServer((request, response) => {
      const status = request.method !== 'GET' || request.url?.split('?', 1)[0] !== '/metrics' ? 404 : authorized(request.headers.authorization) ? 200 : 401
      if (status !== 200) {
        response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...(status === 401 ? { 'www-authenticate': 'Bearer realm="metrics"' } : {}) })
        response.end(status === 404 ? 'Only GET /metrics is served here.\n' : 'Send Authorization: Bearer <METRICS_TOKEN>.\n')
        return
      }
      register.metrics().then((text) => {
        response.writeHead(200, { 'content-type': register.contentType })
        response.end(text)
      }, (err: unknown) => {
        app.log.error({ err }, 'metrics collection failed')
        response.writeHead(500).end()
      })
    })
    app.addHook('onListen', async () => {
      server.listen(exposure.port, exposure.host)
      await once(server, 'listening')
      app.log.info({ host: exposure.host, port: exposure.port }, 'metrics listener ready')
    })
    app.addHook('onClose', async () => {
      if (server.listening) await new Promise((resolve) => server.close(resolve))
    })
  }
}

/**
 * Where GET /metrics is served: on a listener of its own when METRICS_PORT is set (as PostgREST's
 * admin server), else on the API's port, except in production without METRICS_TOKEN, where the
 * metrics (every route, its status mix, the process's internals) would be open to anyone who can
 * reach the API.
 */
function metricsExposure (config: Config): 'public' | 'hidden' | { port: number, host: string } {
  if (config.METRICS_PORT !== undefined) return { port: config.METRICS_PORT, host: config.METRICS_HOST }
  if (config.NODE_ENV === 'production' && config.METRICS_TOKEN === undefined) return 'hidden'
  return 'public'
}

export default fp(metricsPlugin, { name: 'metrics', dependencies: ['database'] })
