/**
 * A client of `GET /v1/events/stream` for tests: reads the server-sent events with a real parser
 * (eventsource-parser) over a real connection, and keeps what arrived.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { EventSourceParserStream } from 'eventsource-parser/stream'

export interface StreamedEvent { id: string, type: string, occurred_at: string, actor_id: string | null, project_id: string, data: Record<string, unknown> }
export interface Received { id: string, event: string, data: StreamedEvent }

export interface StreamClient {
  response: Response
  received: Received[]
  comments: string[]
  retry: number | undefined
  /** Resolves when the server ends the stream: `clean` unless the connection broke off. */
  ended: Promise<{ clean: boolean }>
  /** Waits until `count` events have arrived (throws after `timeoutMs`). */
  waitFor: (count: number, timeoutMs?: number) => Promise<Received[]>
  close: () => void
}

export async function openStream (base: string, token: string, options: { after?: string, lastEventId?: string, accept?: string } = {}): Promise<StreamClient> {
  const controller = new AbortController()
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: options.accept ?? 'text/event-stream' }
  if (options.lastEventId !== undefined) headers['last-event-id'] = options.lastEventId
  const response = await fetch(`${base}/v1/events/stream${options.after === undefined ? '' : `?after=${options.after}`}`, { headers, signal: controller.signal })
  const client: StreamClient = {
    response,
    received: [],
    comments: [],
    retry: undefined,
    ended: Promise.resolve({ clean: true }),
    waitFor: async (count, timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs
      while (client.received.length < count) {
        if (Date.now() > deadline) throw new Error(`${client.received.length} of ${count} events arrived within ${timeoutMs} ms`)
        await sleep(10)
      }
      return client.received.slice(0, count)
    },
    close: () => { controller.abort() },
  }
  if (!response.ok || response.body === null) return client
  const reader = response.body
    .pipeThrough(new TextDecoderStream())
    .pipeThrough(new EventSourceParserStream({
      onComment: (comment) => { client.comments.push(comment) },
      onRetry: (retry) => { client.retry = retry },
    }))
    .getReader()
  client.ended = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return { clean: true }
        client.received.push({ id: value.id!, event: value.event!, data: JSON.parse(value.data) as StreamedEvent })
      }
    } catch {
      return { clean: false }
    }
  })()
  return client
}
