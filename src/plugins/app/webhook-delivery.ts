import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { performance } from 'node:perf_hooks'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import client from '@platformatic/prom-client'
import { Webhook as Signer } from 'standardwebhooks'
import { type Config, retrySchedule } from '../../config.js'
import { atMostEvery } from '../../lib/at-most-every.js'
import { checkOutboundUrl, guardedLookup, RefusedDestination } from '../../lib/outbound-guard.js'
import { contextOf, inSpan, injectTraceHeaders, markFailed, SpanKind, spanUrl } from '../../lib/tracing.js'
import type { AttemptOutcome, ClaimedAttempt } from '../../repositories/webhooks.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Wakes this instance's webhook dispatcher and deliverer at once (they also run on their own). */
    wakeWebhooks: () => void
  }
}

/** Events the dispatcher reads at once. */
const DISPATCH_BATCH = 500
/** How often the dispatcher and the deliverer look for work without being woken. */
const POLL_MS = 500
/**
 * The most often writes wake them: each pass is a transaction, so under a stream of writes one pass
 * per interval takes the events of many (docs/decisions/0030-webhook-delivery.md).
 */
const WAKE_INTERVAL_MS = 100
/** How often the queue's metrics are read. */
const STATS_MS = 5_000
/** The bytes of a receiver's answer that are read and kept. */
const EXCERPT_BYTES = 1024
/** The longest `Retry-After` honoured. */
const MAX_RETRY_AFTER_S = 86_400

/** The schedule's delay before the attempt after `attempt`, ±25%, or undefined after the last. */
function scheduledDelayMs (schedule: number[], attempt: number): number | undefined {
  const seconds = schedule[attempt - 1]
  if (seconds === undefined) return undefined
  return seconds * 1000 * (0.75 + Math.random() * 0.5)
}

/** `Retry-After` in ms (seconds or an HTTP date), or undefined when absent or unreadable. */
function retryAfterMs (value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const seconds = /^\d+$/.test(value.trim()) ? Number(value) : (Date.parse(value) - Date.now()) / 1000
  if (!Number.isFinite(seconds)) return undefined
  return Math.min(Math.max(seconds, 0), MAX_RETRY_AFTER_S) * 1000
}

interface Answer { statusCode: number, headers: IncomingMessage['headers'], excerpt: string }

/**
 * One POST to the receiver: connected to the address the guard checked, no redirects followed, the
 * whole exchange bounded by `timeoutMs`, and no more than EXCERPT_BYTES of the answer read.
 */
async function post (url: URL, headers: Record<string, string>, body: string, timeoutMs: number, allowPrivate: boolean): Promise<Answer> {
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest
  return await new Promise<Answer>((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
      lookup: guardedLookup(allowPrivate) as never,
      signal: AbortSignal.timeout(timeoutMs),
      agent: false,
    }, (res) => {
      const chunks: Buffer[] = []
      let size = 0
      const finish = () => {
        resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, excerpt: Buffer.concat(chunks).subarray(0, EXCERPT_BYTES).toString('utf8') })
        res.destroy()
      }
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk)
        size += chunk.length
        if (size >= EXCERPT_BYTES) finish()
      })
      res.on('end', finish)
      res.on('error', () => finish())
    })
    req.on('error', reject)
    req.end(body)
  })
}

/**
 * Webhook delivery on every instance (docs/decisions/0030-webhook-delivery.md). The dispatcher turns
 * the change feed into queued attempts, one instance at a time; the deliverer claims due attempts
 * (any instance, never two the same one) and makes up to WEBHOOK_CONCURRENCY at once. Both run when
 * woken (a write here or, through `feedSignal`, on another instance) and every POLL_MS.
 */
async function webhookDeliveryPlugin (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts
  const webhooks = app.webhooksRepository
  const schedule = retrySchedule(config)
  const allowPrivate = config.WEBHOOK_ALLOW_PRIVATE_NETWORKS
  // A lease outlives the longest attempt, so an attempt is never made twice at once.
  const leaseMs = config.WEBHOOK_TIMEOUT_MS + 10_000
  let closing = false
  let inFlight = 0
  const settled = new Set<Promise<void>>()

  const outcomes = new client.Counter({ name: 'webhook_deliveries_total', help: 'Webhook delivery attempts by outcome.', labelNames: ['outcome'], registers: [app.metricsRegistry] })
  // Read every STATS_MS rather than at each scrape, so that a scrape never waits for the database.
  let stats = { depth: 0, oldestDueSeconds: 0 }
  const refreshStats = () => {
    webhooks.queueStats().then((latest) => { stats = latest }, (err: unknown) => { app.log.debug({ err }, 'webhooks: queue statistics not read') })
  }
  new client.Gauge({
    name: 'webhook_queue_depth',
    help: `Webhook delivery attempts queued (due or waiting for their time), across instances; read every ${STATS_MS / 1000} s.`,
    registers: [app.metricsRegistry],
    collect () { this.set(stats.depth) },
  })
  new client.Gauge({
    name: 'webhook_oldest_due_seconds',
    help: `How long the oldest due webhook delivery attempt has waited to be made, across instances; read every ${STATS_MS / 1000} s.`,
    registers: [app.metricsRegistry],
    collect () { this.set(stats.oldestDueSeconds) },
  })

  const attempt = async (claimed: ClaimedAttempt): Promise<AttemptOutcome> => {
    if (!claimed.enabled) return { status: 'cancelled', statusCode: null, error: 'the webhook was turned off', durationMs: null, responseExcerpt: null, attemptedAt: null, retryAt: null }
    if (!claimed.visible) return { status: 'cancelled', statusCode: null, error: 'the event is no longer one the webhook\'s owner may see', durationMs: null, responseExcerpt: null, attemptedAt: null, retryAt: null }
    const attemptedAt = new Date()
    const started = performance.now()
    const failed = (error: string, statusCode: number | null, excerpt: string | null, waitMs?: number): AttemptOutcome => {
      const delay = scheduledDelayMs(schedule, claimed.attempt)
      return {
        status: 'failed',
        statusCode,
        error,
        durationMs: Math.round(performance.now() - started),
        responseExcerpt: excerpt,
        attemptedAt,
        retryAt: delay === undefined ? null : new Date(Date.now() + Math.max(delay, waitMs ?? 0)),
      }
    }
    // Retried like any failure: rotating the webhook's secret (or restoring the old root) mends it.
    if (claimed.secrets.length === 0) return failed('the signing secret cannot be read: it was sealed under a root secret dropped from SECRET_KEY_PREVIOUS; rotate the webhook\'s secret', null, null)
    try {
      const url = await checkOutboundUrl(claimed.url, allowPrivate)
      const timestamp = new Date()
      const signature = claimed.secrets.map((secret) => new Signer(secret).sign(claimed.event_id, timestamp, claimed.payload)).join(' ')
      // The attempt's span goes with it (`traceparent`), so a traced receiver continues the trace.
      const answer = await post(url, injectTraceHeaders({
        'webhook-id': claimed.event_id,
        'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
        'webhook-signature': signature,
        'user-agent': 'tasks-api-webhooks/1',
      }), claimed.payload, config.WEBHOOK_TIMEOUT_MS, allowPrivate)
      const { statusCode, excerpt } = answer
      if (statusCode >= 200 && statusCode < 300) {
        return { status: 'succeeded', statusCode, error: null, durationMs: Math.round(performance.now() - started), responseExcerpt: excerpt, attemptedAt, retryAt: null }
      }
      if (statusCode === 410) return { ...failed('the receiver answered 410 Gone: the webhook is turned off', statusCode, excerpt), retryAt: null, disable: 'the receiver answered 410 Gone' }
      if (statusCode >= 300 && statusCode < 400) return failed(`the receiver answered ${statusCode}; redirects are not followed`, statusCode, excerpt)
      const wait = statusCode === 429 || statusCode === 503 ? retryAfterMs(answer.headers['retry-after'] as string | undefined) : undefined
      return failed(`the receiver answered ${statusCode}`, statusCode, excerpt, wait)
    } catch (err) {
      const error = err instanceof RefusedDestination
        ? `refused: ${err.message}`
        : (err as Error).name === 'TimeoutError' || (err as Error).name === 'AbortError'
            ? `no answer within ${config.WEBHOOK_TIMEOUT_MS} ms`
            : `could not connect: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`
      return failed(error, null, null)
    }
  }

  /** The attempt in a span of its own, in the trace of the change that caused the event. */
  const tracedAttempt = async (claimed: ClaimedAttempt): Promise<AttemptOutcome> => await inSpan('webhook attempt', {
    kind: SpanKind.CLIENT,
    parent: contextOf(claimed.traceparent),
    attributes: {
      'http.request.method': 'POST',
      'url.full': spanUrl(claimed.url),
      'webhook.id': claimed.webhook_id,
      'webhook.event_id': claimed.event_id,
      'webhook.event_type': claimed.event_type,
      'webhook.attempt': claimed.attempt,
    },
  }, async (span) => {
    const outcome = await attempt(claimed)
    span.setAttribute('webhook.outcome', outcome.status)
    if (outcome.statusCode !== null) span.setAttribute('http.response.status_code', outcome.statusCode)
    if (outcome.status !== 'succeeded') markFailed(span, outcome.error ?? outcome.status)
    return outcome
  })

  const run = async (claimed: ClaimedAttempt): Promise<void> => {
    const outcome = await tracedAttempt(claimed)
    try {
      const recorded = await webhooks.record(claimed, outcome)
      if (recorded) outcomes.inc({ outcome: outcome.status })
    } catch (err) {
      // The lease runs out and the attempt is made again: at least once, never lost.
      app.log.warn({ err, delivery: claimed.id }, 'webhooks: recording an attempt failed')
    }
  }

  let delivering = false
  let deliverAgain = false
  const deliver = async (): Promise<void> => {
    if (delivering) {
      deliverAgain = true
      return
    }
    delivering = true
    try {
      do {
        deliverAgain = false
        const room = config.WEBHOOK_CONCURRENCY - inFlight
        if (room <= 0 || closing) break
        const claimed = await webhooks.claim(room, leaseMs)
        for (const one of claimed) {
          inFlight += 1
          const done: Promise<void> = run(one).finally(() => {
            inFlight -= 1
            settled.delete(done)
            wakeDeliverer()
          })
          settled.add(done)
        }
        if (claimed.length === room) deliverAgain = true
      } while (deliverAgain && !closing)
    } catch (err) {
      app.log.warn({ err }, 'webhooks: claiming attempts failed')
    } finally {
      delivering = false
    }
  }
  const wakeDeliverer = () => { void deliver() }

  let dispatching = false
  let dispatchAgain = false
  const dispatch = async (): Promise<void> => {
    if (dispatching) {
      dispatchAgain = true
      return
    }
    dispatching = true
    try {
      do {
        dispatchAgain = false
        const read = await webhooks.dispatch(DISPATCH_BATCH)
        if (read !== undefined && read > 0) wakeDeliverer()
        if (read === DISPATCH_BATCH) dispatchAgain = true
      } while (dispatchAgain && !closing)
    } catch (err) {
      app.log.warn({ err }, 'webhooks: dispatching events failed')
    } finally {
      dispatching = false
    }
  }
  const wake = () => {
    if (closing || !config.WEBHOOK_DELIVERY) return
    void dispatch()
    void deliver()
  }
  app.decorate('wakeWebhooks', wake)

  let poll: NodeJS.Timeout | undefined
  let statsTimer: NodeJS.Timeout | undefined
  let unsubscribe: (() => Promise<void>) | undefined
  app.addHook('onReady', async () => {
    if (!config.WEBHOOK_DELIVERY) return
    poll = setInterval(wake, POLL_MS).unref()
    statsTimer = setInterval(refreshStats, STATS_MS).unref()
    refreshStats()
    unsubscribe = await app.feedSignal.subscribe(atMostEvery(WAKE_INTERVAL_MS, wake)).catch((err: unknown) => {
      app.log.warn({ err }, 'webhooks: not woken by other instances; they look every 500 ms')
      return undefined
    })
  })
  // Attempts under way are finished (each bounded by WEBHOOK_TIMEOUT_MS) and recorded before the
  // database closes; an instance killed instead leaves them to others once their lease runs out.
  app.addHook('preClose', async () => {
    closing = true
    if (poll !== undefined) clearInterval(poll)
    if (statsTimer !== undefined) clearInterval(statsTimer)
    await unsubscribe?.()
    await Promise.all(settled)
    while (dispatching || delivering) await new Promise((resolve) => setTimeout(resolve, 10))
  })
}

export default fp(webhookDeliveryPlugin, { name: 'webhook-delivery', dependencies: ['repositories', 'feed-signal', 'metrics'] })
