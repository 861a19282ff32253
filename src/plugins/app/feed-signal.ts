import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import type { Config } from '../../config.js'
import { atMostEvery } from '../../lib/at-most-every.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Wake-ups of the live event streams, across instances (docs/decisions/0029-live-event-streams.md). */
    feedSignal: FeedSignal
  }
}

export interface FeedSignal {
  /** Says that the feed may have grown: at once, then at most once per SIGNAL_INTERVAL_MS. */
  changed: () => void
  /**
   * Runs `wake` whenever any instance says the feed may have grown, and whenever the channel
   * (re)connects, since what was said while it was down is lost. Returns the unsubscription.
   */
  subscribe: (wake: () => void) => Promise<() => Promise<void>>
}

/** The PostgreSQL channel, and the Redis one, that carry the wake-ups. */
export const FEED_CHANNEL = 'tasks_api_events'
const SIGNAL_INTERVAL_MS = 20

interface Channel {
  publish: () => Promise<void>
  subscribe: (wake: () => void) => Promise<() => Promise<void>>
}

/** Redis pub/sub: for deployments whose database connections go through a pooler that keeps no sessions. */
async function redisChannel (app: FastifyInstance, url: string): Promise<Channel> {
  // Loaded only when used: importing ioredis slows every start (docs/decisions/0015-start-up-schema-compilation.md).
  const { Redis } = await import('ioredis')
  let publisher: Redis | undefined
  const connections: Redis[] = []
  const connect = (): Redis => {
    const connection = new Redis(url, { connectTimeout: 2_000, maxRetriesPerRequest: 1, lazyConnect: false })
    connection.on('error', (err: Error) => { app.log.warn({ err }, 'event stream wake-ups (Redis) unavailable; streams fall back to polling') })
    connections.push(connection)
    return connection
  }
  app.addHook('onClose', async () => {
    await Promise.all(connections.map(async (c) => { await c.quit().catch(() => c.disconnect()) }))
  })
  return {
    publish: async () => { await (publisher ??= connect()).publish(FEED_CHANNEL, '') },
    subscribe: async (wake) => {
      const subscriber = connect()
      subscriber.on('message', wake)
      subscriber.on('ready', wake)
      await subscriber.subscribe(FEED_CHANNEL)
      return async () => { await subscriber.unsubscribe(FEED_CHANNEL).catch(() => {}) }
    },
  }
}

/**
 * Tells the live event streams of every instance that the feed may have grown, so they read it at
 * once instead of at their next poll. A wake-up carries nothing: the feed itself is the truth, and
 * a lost wake-up only delays events until the poll. Every successful write request signals after
 * its answer, so after its commit; a burst of writes costs one message per SIGNAL_INTERVAL_MS.
 * The carrier is Redis when REDIS_URL is set, else PostgreSQL's LISTEN/NOTIFY.
 */
async function feedSignalPlugin (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const channel: Channel = opts.config.REDIS_URL !== undefined
    ? await redisChannel(app, opts.config.REDIS_URL)
    : {
        publish: async () => { await app.database.notify(FEED_CHANNEL) },
        subscribe: async (wake) => await app.database.listen(FEED_CHANNEL, wake, wake),
      }

  let closed = false
  app.addHook('onClose', async () => { closed = true })
  const changed = atMostEvery(SIGNAL_INTERVAL_MS, () => {
    if (closed) return
    channel.publish().catch((err: unknown) => { app.log.warn({ err }, 'event stream wake-up not sent; streams will poll') })
  })
  app.decorate('feedSignal', { changed, subscribe: channel.subscribe })

  app.addHook('onResponse', (request, reply, done) => {
    const method = request.method
    if (method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS' && reply.statusCode < 400) changed()
    done()
  })
}

export default fp(feedSignalPlugin, { name: 'feed-signal', dependencies: ['database'] })
