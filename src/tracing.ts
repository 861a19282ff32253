import type { Config } from './config.js'
import { apiVersion } from './openapi-info.js'

export interface Tracing {
  /** Sends the spans still buffered and stops: the last step of shutting down. */
  shutdown: () => Promise<void>
}

/**
 * Turns tracing on for this process when OTEL_EXPORTER_OTLP_ENDPOINT is set: the OpenTelemetry SDK
 * becomes the API's provider (with W3C trace context propagation and spans following async work),
 * and spans go in batches to the collector over OTLP/HTTP. The SDK reads its own standard variables
 * for the rest (headers, sampler, batch sizes). Loaded only then, so that tracing off costs nothing,
 * not even the loading. Returns undefined when off.
 */
export async function startTracing (config: Pick<Config, 'OTEL_EXPORTER_OTLP_ENDPOINT' | 'OTEL_SERVICE_NAME'>): Promise<Tracing | undefined> {
  if (config.OTEL_EXPORTER_OTLP_ENDPOINT === undefined) return undefined
  const [{ NodeTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes }, { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION }] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/semantic-conventions'),
  ])
  const endpoint = config.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.OTEL_SERVICE_NAME, [ATTR_SERVICE_VERSION]: apiVersion }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({
      url: process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? `${endpoint}/v1/traces`,
    }))],
  })
  provider.register()
  return { shutdown: async () => { await provider.shutdown() } }
}
