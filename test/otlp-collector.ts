/**
 * An OTLP/HTTP trace collector for tests: a real HTTP server on localhost that takes what an
 * exporter POSTs to /v1/traces (OTLP's JSON encoding, what @opentelemetry/exporter-trace-otlp-http
 * sends), decodes it, and keeps every span flattened with its resource's service name.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

type AttributeValue = string | number | boolean | undefined

export interface CollectedSpan {
  service: AttributeValue
  traceId: string
  spanId: string
  /** '' for a root span. */
  parentSpanId: string
  name: string
  /** OTLP's numbers: 1 internal, 2 server, 3 client. */
  kind: number
  attributes: Record<string, AttributeValue>
  /** OTLP's numbers: 0 unset, 1 ok, 2 error. */
  status: number
}

export interface Collector {
  /** For OTEL_EXPORTER_OTLP_ENDPOINT. */
  url: string
  spans: CollectedSpan[]
  /** Every raw body received, to search for what must never be exported. */
  bodies: string[]
  /** The spans of `traceId` once `done` holds of them. */
  waitFor: (traceId: string, done: (spans: CollectedSpan[]) => boolean, timeoutMs?: number) => Promise<CollectedSpan[]>
  close: () => Promise<void>
}

interface OtlpValue { stringValue?: string, intValue?: number | string, boolValue?: boolean, doubleValue?: number }
interface OtlpAttribute { key: string, value: OtlpValue }
interface OtlpSpan { traceId: string, spanId: string, parentSpanId?: string, name: string, kind: number, attributes?: OtlpAttribute[], status?: { code?: number } }
interface OtlpExport { resourceSpans: Array<{ resource?: { attributes?: OtlpAttribute[] }, scopeSpans: Array<{ spans: OtlpSpan[] }> }> }

const valueOf = (v: OtlpValue): AttributeValue => v.stringValue ?? (v.intValue === undefined ? undefined : Number(v.intValue)) ?? v.boolValue ?? v.doubleValue
const attributesOf = (list: OtlpAttribute[] = []) => Object.fromEntries(list.map((a) => [a.key, valueOf(a.value)]))

export async function startCollector (): Promise<Collector> {
  const spans: CollectedSpan[] = []
  const bodies: string[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => { body += chunk })
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces' || req.headers['content-type'] !== 'application/json') {
        res.writeHead(415).end()
        return
      }
      bodies.push(body)
      for (const resourceSpans of (JSON.parse(body) as OtlpExport).resourceSpans) {
        const service = attributesOf(resourceSpans.resource?.attributes)['service.name']
        for (const scope of resourceSpans.scopeSpans) {
          for (const span of scope.spans) {
            spans.push({
              service,
              traceId: span.traceId,
              spanId: span.spanId,
              parentSpanId: span.parentSpanId ?? '',
              name: span.name,
              kind: span.kind,
              attributes: attributesOf(span.attributes),
              status: span.status?.code ?? 0,
            })
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    bodies,
    waitFor: async (traceId, done, timeoutMs = 15_000) => {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const mine = spans.filter((s) => s.traceId === traceId)
        if (done(mine)) return mine
        if (Date.now() > deadline) throw new Error(`the trace's spans did not arrive within ${timeoutMs} ms: ${JSON.stringify(mine.map((s) => s.name))}`)
        await sleep(20)
      }
    },
    close: async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}
