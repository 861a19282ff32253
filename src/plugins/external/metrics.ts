import { timingSafeEqual } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import client from '@platformatic/prom-client'
import type { Config } from '../../config.js'
import { problem } from '../../errors.js'

/** Operational routes that would only measure the scraper and the explorer. */
const unmeasured = (route: string) => route === '/metrics' || route === '/docs' || route.startsWith('/docs/')

/**
 * Prometheus metrics (prom-client): request count and latency histogram by route template, method
 * and status, the database pool, and process and runtime metrics. Served at GET /metrics, behind
 * `Authorization: Bearer <METRICS_TOKEN>` when that is set.
 * @see https://github.com/platformatic/prom-client
 */
async function metricsPlugin (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  // A registry per app: tests build many apps in one process, each starting from zero.
  const register = new client.Registry()
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
    help: 'Database connections of this instance by state (PostgreSQL); the embedded database has one.',
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
    .set(app.database.driver === 'postgres' ? opts.config.DB_POOL_MAX : 1)

  const token = opts.config.METRICS_TOKEN === undefined ? undefined : Buffer.from(`Bearer ${opts.config.METRICS_TOKEN}`)
  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    if (token !== undefined) {
      const given = Buffer.from(request.headers.authorization ?? '')
      if (given.length !== token.length || !timingSafeEqual(given, token)) {
        throw problem('UNAUTHENTICATED', 'Send `Authorization: Bearer <METRICS_TOKEN>`.', { headers: { 'www-authenticate': 'Bearer realm="metrics"' } })
      }
    }
    return reply.type(register.contentType).send(await register.metrics())
  })
}

export default fp(metricsPlugin, { name: 'metrics', dependencies: ['database'] })
