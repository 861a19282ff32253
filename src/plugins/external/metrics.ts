import { timingSafeEqual } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import metricsModule from 'fastify-metrics'
import type { Config } from '../../config.js'
import { problem } from '../../errors.js'

/**
 * Prometheus metrics: request count and latency histogram by route template, method and status
 * (fastify-metrics), process and runtime metrics, and the database pool. Served at GET /metrics,
 * behind `Authorization: Bearer <METRICS_TOKEN>` when that is set.
 * @see https://github.com/SkeLLLa/fastify-metrics
 */
// CommonJS with an `exports.default`: under ESM the plugin arrives one level down.
const metrics = metricsModule.default

async function metricsPlugin (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  await app.register(metrics, {
    endpoint: null,
    // Tests build many apps in one process; each starts from an empty default registry.
    clearRegisterOnInit: true,
    defaultMetrics: { enabled: true },
    routeMetrics: {
      enabled: { histogram: true, summary: false },
      registeredRoutesOnly: true,
      routeBlacklist: ['/metrics', '/docs', /^\/docs\//],
      overrides: { histogram: { name: 'http_request_duration_seconds', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] } },
    },
  })

  const client = app.metrics.client
  new client.Gauge({
    name: 'db_pool_connections',
    help: 'Database connections of this instance by state (PostgreSQL); the embedded database has one.',
    labelNames: ['state'],
    async collect () {
      this.reset()
      const stats = await app.database.poolStats().catch(() => undefined)
      if (stats === undefined) return
      for (const [state, count] of Object.entries(stats)) this.set({ state }, count)
    },
  })
  new client.Gauge({ name: 'db_pool_max', help: 'Configured maximum of database connections per instance.' })
    .set(app.database.driver === 'postgres' ? opts.config.DB_POOL_MAX : 1)

  const token = opts.config.METRICS_TOKEN === undefined ? undefined : Buffer.from(`Bearer ${opts.config.METRICS_TOKEN}`)
  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    if (token !== undefined) {
      const given = Buffer.from(request.headers.authorization ?? '')
      if (given.length !== token.length || !timingSafeEqual(given, token)) {
        throw problem('UNAUTHENTICATED', 'Send `Authorization: Bearer <METRICS_TOKEN>`.', { headers: { 'www-authenticate': 'Bearer realm="metrics"' } })
      }
    }
    return reply.type(client.register.contentType).send(await client.register.metrics())
  })
}

export default fp(metricsPlugin, { name: 'metrics', dependencies: ['database'] })
