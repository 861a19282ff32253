import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import type { Redis } from 'ioredis'
import type { Config } from '../../config.js'
import { problem, type ProblemError } from '../../errors.js'
import { rateLimitHeaders, withHeaders } from '../../schemas/common.js'

/**
 * The 429 of a limit checked by hand (`createRateLimit`), with the headers the plugin sends on its
 * own 429s.
 */
export function limitReached (detail: string, limit: { max: number, ttlInSeconds: number }): ProblemError {
  const seconds = String(limit.ttlInSeconds)
  return problem('RATE_LIMITED', detail, {
    headers: { 'retry-after': seconds, 'ratelimit-limit': String(limit.max), 'ratelimit-remaining': '0', 'ratelimit-reset': seconds },
  })
}

/**
 * Rate limiting, applied where a route or the per-caller limit asks for it (`global: false`).
 * Counters live in memory, or in Redis when REDIS_URL is set so that limits hold across instances.
 * Headers follow the IETF draft (`RateLimit-Limit`, `-Remaining`, `-Reset`, plus `Retry-After`).
 * @see https://github.com/fastify/fastify-rate-limit
 */
async function rateLimitPlugin (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts
  let redis: Redis | undefined
  if (config.REDIS_URL !== undefined) {
    // Loaded only when used: importing ioredis slows every start (docs/decisions/0015-start-up-schema-compilation.md).
    const { Redis } = await import('ioredis')
    redis = new Redis(config.REDIS_URL, { connectTimeout: 2_000, commandTimeout: 1_000, maxRetriesPerRequest: 1 })
    redis.on('error', (err: Error) => { app.log.warn({ err }, 'rate-limit store (Redis) unavailable; requests are not limited meanwhile') })
    app.addHook('onClose', async () => { await redis!.quit().catch(() => redis!.disconnect()) })
  }
  await app.register(rateLimit, {
    global: false,
    enableDraftSpec: true,
    ...(redis !== undefined ? { redis, nameSpace: config.REDIS_KEY_PREFIX } : {}),
    // An unreachable Redis must not take the API down with it; the error handler above logs it.
    skipOnError: true,
    errorResponseBuilder: (_request, context) => problem('RATE_LIMITED', `Too many requests; retry in ${context.after}.`),
  })
  // A route limited by its own `config.rateLimit` sends the headers with every answer it gives
  // (a 414 comes from the router, before the route); the per-caller limit is documented where it
  // is applied (src/plugins/app/authorize.ts).
  app.addHook('onRoute', (route) => {
    if (route.config?.rateLimit === undefined || route.schema?.response === undefined) return
    route.schema = { ...route.schema, response: withHeaders(route.schema.response as object, rateLimitHeaders, [414]) }
  })
}

export default fp(rateLimitPlugin, { name: 'rate-limit' })
