import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyRequest {
    /** The ids of the request's span, for its access line; only with tracing on. */
    traceIds?: { trace_id: string, span_id: string } | null
  }
}

/** Probes and scrapes, every few seconds from machines: spans of no use to anyone. */
const untraced = (url: string) => url.startsWith('/health/') || url === '/metrics'

/**
 * A span per request, named by method and route template (`GET /v1/tasks/:id`), continuing the
 * caller's trace when a W3C `traceparent` comes with it; the handler's span beneath it holds the
 * spans of the work it does. Built by @fastify/otel, without a span per hook: hooks are many and
 * short, and would triple the spans of a request. Registered only when tracing is on (src/tracing.ts).
 */
async function tracingPlugin (app: FastifyInstance): Promise<void> {
  const { FastifyOtelInstrumentation } = await import('@fastify/otel')
  app.decorateRequest('traceIds', null)
  const instrumentation = new FastifyOtelInstrumentation({
    instrumentHooks: false,
    ignorePaths: ({ url }) => untraced(url),
    requestHook: (span, request) => {
      const route = request.routeOptions.url
      span.updateName(route === undefined ? request.method : `${request.method} ${route}`)
      const { traceId, spanId } = span.spanContext()
      request.traceIds = { trace_id: traceId, span_id: spanId }
    },
  })
  await app.register(instrumentation.plugin())
}

export default fp(tracingPlugin, { name: 'tracing' })
