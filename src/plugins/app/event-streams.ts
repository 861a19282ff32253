import type { ServerResponse } from 'node:http'
import type { FastifyInstance, FastifyReply } from 'fastify'
import fp from 'fastify-plugin'
import client from '@platformatic/prom-client'
import type { Config } from '../../config.js'
import { problem } from '../../errors.js'
import { before, type FeedEvent, type FeedPosition } from '../../repositories/events.js'
import type { Event } from '../../schemas/events.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The live event streams of this instance (docs/decisions/0029-live-event-streams.md). */
    eventStreams: {
      /**
       * Streams `userId`'s events to `reply` (an SSE reply) from `after`, or from now when it is
       * undefined: the events after it first, then every event as it becomes final. Throws
       * SYNC_EXPIRED before anything is sent when `after` is past the retention.
       */
      serve: (reply: FastifyReply, userId: string, after: FeedPosition | undefined) => Promise<void>
      /** Ends every stream, as shutdown begins: clients reconnect (to another instance) and resume. */
      endAll: () => void
    }
  }
}

/** Events per read, both catching up and following the feed. */
const BATCH = 500
/** How soon the reader looks again when events wait for an older transaction to finish. */
const HELD_BACK_RECHECK_MS = 50
/** How long a client waits before reconnecting, sent as the stream's first field. */
const RECONNECT_MS = 2_000

interface Stream {
  userId: string
  reply: FastifyReply
  /** Everything up to here was sent while catching up. */
  after: FeedPosition
  /** Frames gathered from one read of the feed, written at once. */
  pending: string[]
}

const frameOf = (event: Event) => `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`

async function drained (raw: ServerResponse): Promise<void> {
  await new Promise<void>((resolve) => {
    const done = () => {
      raw.off('drain', done)
      raw.off('close', done)
      resolve()
    }
    raw.once('drain', done)
    raw.once('close', done)
  })
}

/**
 * One reader per instance follows the whole feed for every open stream: a stream costs a socket and
 * a few objects, not a query per event. A new stream first catches up on its own with the feed's
 * pages, then joins the reader once the reader has not passed it (else it catches up again). The
 * reader runs when woken (`feedSignal`), every EVENTS_STREAM_POLL_MS while streams are open, and
 * soon again while events wait for an older transaction to finish.
 * A stream whose client leaves more than EVENTS_STREAM_MAX_BUFFER_BYTES unread is cut off: its
 * client reconnects with Last-Event-ID and catches up from the feed, so a slow reader costs the
 * server a bounded buffer.
 */
async function eventStreamsPlugin (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts
  const events = app.eventsRepository
  const all = new Set<Stream>()
  /** The streams that follow the reader, by user. */
  const following = new Map<string, Set<Stream>>()
  const joining: Array<{ stream: Stream, admitted: (yes: boolean) => void }> = []
  /** Where the reader is; undefined while no stream follows it. */
  let position: FeedPosition | undefined
  let reading = false
  let again = false
  let unsubscribe: (() => Promise<void>) | undefined
  let poll: NodeJS.Timeout | undefined
  let recheck: NodeJS.Timeout | undefined
  let closing = false

  const sent = new client.Counter({ name: 'events_stream_events_sent_total', help: 'Events written to live event streams.', registers: [app.metricsRegistry] })
  const cutOff = new client.Counter({ name: 'events_streams_cut_off_total', help: 'Live event streams ended because their client left too much unread.', registers: [app.metricsRegistry] })
  new client.Gauge({
    name: 'events_streams_open',
    help: 'Live event streams open on this instance.',
    registers: [app.metricsRegistry],
    collect () { this.set(all.size) },
  })

  /** Writes to a following stream; cuts it off when its client has not taken what it was sent. */
  const write = (stream: Stream, chunk: string, count: number): void => {
    const raw = stream.reply.raw
    if (raw.writableLength > config.EVENTS_STREAM_MAX_BUFFER_BYTES) {
      cutOff.inc()
      stream.reply.log.info({ event: 'events.stream_cut_off', unread_bytes: raw.writableLength }, 'event stream cut off: its client reads too slowly')
      remove(stream)
      raw.destroy()
      return
    }
    raw.write(chunk)
    sent.inc(count)
  }

  /** Lets in the streams waiting to follow the reader, or sends them back to catch up if it has passed them. */
  const admit = (): void => {
    const waiting = joining.splice(0)
    // An idle reader starts where the earliest of them is.
    if (position === undefined) {
      for (const { stream } of waiting) if (position === undefined || before(stream.after, position)) position = stream.after
    }
    for (const { stream, admitted } of waiting) {
      if (!all.has(stream)) {
        admitted(true) // gone while waiting: nothing more to send
        continue
      }
      if (before(stream.after, position!)) {
        admitted(false)
        continue
      }
      let streams = following.get(stream.userId)
      if (streams === undefined) following.set(stream.userId, streams = new Set())
      streams.add(stream)
      admitted(true)
    }
  }

  const dispatch = (batch: FeedEvent[]): void => {
    const touched = new Set<Stream>()
    for (const { event, position: at, recipients } of batch) {
      let frame: string | undefined
      for (const userId of recipients) {
        for (const stream of following.get(userId) ?? []) {
          if (!before(stream.after, at)) continue
          stream.pending.push(frame ??= frameOf(event))
          touched.add(stream)
        }
      }
    }
    for (const stream of touched) {
      const count = stream.pending.length
      write(stream, stream.pending.join(''), count)
      stream.pending = []
    }
  }

  const read = async (): Promise<void> => {
    if (reading) {
      again = true
      return
    }
    reading = true
    try {
      do {
        again = false
        admit()
        if (following.size === 0) {
          position = undefined
          break
        }
        const { events: batch, next, heldBack } = await events.follow(position!, [...following.keys()], BATCH)
        dispatch(batch)
        position = next
        if (batch.length === BATCH) again = true
        // Events wait for an older transaction, whose end no one may announce: look again soon.
        else if (heldBack) recheck ??= setTimeout(() => { recheck = undefined; wake() }, HELD_BACK_RECHECK_MS).unref()
      } while (again && !closing)
    } catch (err) {
      // The next wake-up or poll reads again from the same place.
      app.log.warn({ err }, 'event streams: reading the feed failed')
    } finally {
      reading = false
    }
  }
  const wake = (): void => { void read() }

  const join = async (stream: Stream): Promise<boolean> => {
    const admitted = new Promise<boolean>((resolve) => joining.push({ stream, admitted: resolve }))
    wake()
    return await admitted
  }

  const start = async (): Promise<void> => {
    poll ??= setInterval(wake, config.EVENTS_STREAM_POLL_MS).unref()
    if (unsubscribe === undefined) {
      unsubscribe = () => Promise.resolve()
      unsubscribe = await app.feedSignal.subscribe(wake).catch((err: unknown) => {
        app.log.warn({ err }, 'event streams: not woken by other instances; they poll every EVENTS_STREAM_POLL_MS')
        return undefined
      })
    }
  }

  function remove (stream: Stream): void {
    all.delete(stream)
    const streams = following.get(stream.userId)
    streams?.delete(stream)
    if (streams?.size === 0) following.delete(stream.userId)
    if (all.size === 0 && poll !== undefined) {
      clearInterval(poll)
      poll = undefined
    }
  }

  const serve = async (reply: FastifyReply, userId: string, after: FeedPosition | undefined): Promise<void> => {
    if (app.shuttingDown || closing) throw problem('SERVICE_UNAVAILABLE', 'The server is shutting down: reconnect.', { headers: { 'retry-after': '1' } })
    const sse = reply.sse
    let from = after ?? await events.end()
    let first = true
    const stream: Stream = { userId, reply, after: from, pending: [] }
    for (;;) {
      // Catching up: page by page, each written once the client has taken the one before.
      for (;;) {
        const page = await events.page(userId, from, BATCH)
        if ('expired' in page) {
          if (first) throw problem('SYNC_EXPIRED', 'Events after this position have been purged: list your tasks and projects again, then stream without `after`.')
          sse.close()
          return
        }
        if (first) {
          first = false
          sse.keepAlive()
          sse.sendHeaders()
          all.add(stream)
          sse.onClose(() => { remove(stream) })
          reply.raw.write(`retry: ${RECONNECT_MS}\n\n`)
          await start()
        }
        if (!sse.isConnected) return
        if (page.items.length > 0 && !reply.raw.write(page.items.map(frameOf).join(''))) await drained(reply.raw)
        sent.inc(page.items.length)
        from = page.next
        if (page.items.length < BATCH) break
      }
      if (!sse.isConnected) return
      stream.after = from
      if (await join(stream)) return
    }
  }

  const endAll = (): void => {
    closing = true
    for (const stream of all) stream.reply.sse.close()
  }

  app.decorate('eventStreams', { serve, endAll })
  app.addHook('preClose', async () => { endAll() })
  app.addHook('onClose', async () => {
    if (poll !== undefined) clearInterval(poll)
    if (recheck !== undefined) clearTimeout(recheck)
    await unsubscribe?.()
  })
}

export default fp(eventStreamsPlugin, { name: 'event-streams', dependencies: ['repositories', 'feed-signal', 'metrics'] })
