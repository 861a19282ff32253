import type { FastifyInstance, onRequestAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../../config.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The onRequest hook of the per-caller limit; runs after `authenticate`, which names the caller. */
    limitPerCaller: onRequestAsyncHookHandler
  }
}

/**
 * The per-caller rate limit: one budget (RATE_LIMIT_MAX per RATE_LIMIT_WINDOW) per caller across
 * the whole API, per API key for keys and per user for tokens.
 */
async function callerRateLimitPlugin (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts
  app.decorate('limitPerCaller', app.rateLimit({
    max: config.RATE_LIMIT_MAX,
    timeWindow: config.RATE_LIMIT_WINDOW * 1000,
    keyGenerator: (request) => request.auth!.keyId !== null ? `key:${request.auth!.keyId}` : `user:${request.auth!.userId}`,
  }) as unknown as onRequestAsyncHookHandler)
}

export default fp(callerRateLimitPlugin, { name: 'caller-rate-limit', dependencies: ['rate-limit', 'authenticate'] })
