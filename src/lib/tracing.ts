import { type Attributes, type Context, context, propagation, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'

/**
 * Spans of the service's own making, over the OpenTelemetry API alone: until `startTracing`
 * (src/tracing.ts) registers an SDK, the tracer and the propagator are the API's no-ops, so this
 * code costs next to nothing with tracing off.
 */
export const tracer = trace.getTracer('tasks-api')

export { SpanKind }
export type { Span }

/** Whether a span is active: work done now belongs to a trace. */
export function inTrace (): boolean {
  return trace.getSpan(context.active()) !== undefined
}

/** The W3C `traceparent` of the active span, to store with work done later in its name; null without one. */
export function activeTraceparent (): string | null {
  if (!inTrace()) return null
  const carrier: { traceparent?: string } = {}
  propagation.inject(context.active(), carrier)
  return carrier.traceparent ?? null
}

/** The context a stored `traceparent` names, to make later work its child; the root context without one. */
export function contextOf (traceparent: string | null): Context {
  return traceparent === null ? ROOT_CONTEXT : propagation.extract(ROOT_CONTEXT, { traceparent })
}

/** Sets the active trace's headers (`traceparent`, `tracestate`) on an outgoing request's headers. */
export function injectTraceHeaders (headers: Record<string, string>): Record<string, string> {
  propagation.inject(context.active(), headers)
  return headers
}

/** Marks a span failed by `err`. */
export function recordFailure (span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : String(err))
  markFailed(span, err instanceof Error ? err.message : String(err))
}

/** Marks a span failed for a reason that is not an exception (a receiver's 500, say). */
export function markFailed (span: Span, reason: string): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message: reason })
}

/**
 * Runs `work` in a new span, active for everything `work` does (a child of `parent`, else of the
 * active span), ending it when `work` settles; a throw marks the span failed.
 */
export async function inSpan<T> (name: string, options: { kind: SpanKind, attributes?: Attributes, parent?: Context }, work: (span: Span) => Promise<T>): Promise<T> {
  return await tracer.startActiveSpan(name, { kind: options.kind, attributes: options.attributes ?? {} }, options.parent ?? context.active(), async (span) => {
    try {
      return await work(span)
    } catch (err) {
      recordFailure(span, err)
      throw err
    } finally {
      span.end()
    }
  })
}

/** The active span's ids for a log line (pino's `mixin`); none when no span is active. */
export function traceLogFields (): { trace_id?: string, span_id?: string } {
  const span = trace.getSpan(context.active())
  if (span === undefined) return {}
  const { traceId, spanId } = span.spanContext()
  return { trace_id: traceId, span_id: spanId }
}

/** A URL for a span attribute: no credentials, query or fragment, which may carry secrets. */
export function spanUrl (url: string | URL): string {
  try {
    const { protocol, host, pathname } = new URL(url)
    return `${protocol}//${host}${pathname}`
  } catch {
    return 'unreadable'
  }
}
