import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import { limitReached } from '../external/rate-limit.js'
import { securityEvent } from '../../lib/security-events.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Failed password checks per username, whichever IPs they come from; successes do not count. */
    loginThrottle: {
      /** Refuses (429) before any hashing once the username has too many recent failures. */
      check: (request: FastifyRequest, username: string) => Promise<void>
      recordFailure: (request: FastifyRequest, username: string) => Promise<void>
    }
  }
}

/**
 * Counts failed logins per username in the rate-limit store (so in Redis across instances when
 * configured). @fastify/rate-limit counts requests; reading the counter without incrementing it and
 * incrementing only on failure turns it into a failure counter.
 */
async function loginThrottlePlugin (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  // The limiter derives its key from the request; this says which username a request is about.
  const usernames = new WeakMap<FastifyRequest, string>()
  const limiter = app.createRateLimit({
    max: opts.config.LOGIN_FAILURES_MAX,
    timeWindow: opts.config.LOGIN_FAILURES_WINDOW * 1000,
    keyGenerator: (request) => `login-failures:${usernames.get(request)!}`,
  })

  app.decorate('loginThrottle', {
    async check (request: FastifyRequest, username: string): Promise<void> {
      usernames.set(request, username.toLowerCase())
      const state = await limiter(request, { increment: false })
      if (state.isAllowed || state.remaining > 0) return
      securityEvent(request.log, 'auth.login_throttled', { username })
      throw limitReached(`Too many failed logins for this username; retry in ${state.ttlInSeconds} s.`, state)
    },
    async recordFailure (request: FastifyRequest, username: string): Promise<void> {
      usernames.set(request, username.toLowerCase())
      await limiter(request)
    },
  })
}

export default fp(loginThrottlePlugin, { name: 'login-throttle', dependencies: ['rate-limit'] })
