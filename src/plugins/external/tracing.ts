import { context } from '@opentelemetry/api'
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
 * caller's trace when a W3C `traceparent` comes with it, and holding the spans of the work the
 * request does. Built by @fastify/otel, without a span per hook or for the handler: hooks are
 * many and short, and spans are most of what tracing costs. Registered only when tracing is on
 * (src/tracing.ts).
 */
async function tracingPlugin (app: FastifyInstance): Promise<void> {
  const { FastifyOtelInstrumentation } = await import('@fastify/otel')
  app.decorateRequest('traceIds', null)
  const instrumentation = new FastifyOtelInstrumentation({
    instrumentHooks: false,
    instrumentHandler: false,
    ignorePaths: ({ url }) => untraced(url),
    requestHook: (span, request) => {
      const route = request.routeOptions.url
      span.updateName(route === undefined ? request.method : `${request.method} ${route}`)
      const { traceId, spanId } = span.spanContext()
      request.traceIds = { trace_id: traceId, span_id: spanId }
    },
  })
  await app.register(instrumentation.plugin())
  // A request with a body resumes in the socket's async context once the body is read, outside
  // the request's span: the handler and its hooks are put back in it.
  app.addHook('preHandler', (request, _reply, done) => {
    const { context: requestContext } = request.opentelemetry()
    if (requestContext === null) done()
    else context.with(requestContext, done)
  })
}

export default fp(tracingPlugin, { name: 'tracing' })
