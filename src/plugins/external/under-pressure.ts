import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import underPressure from '@fastify/under-pressure'
import type { Config } from '../../config.js'

/**
 * Sheds load with 503 + Retry-After when the event loop is saturated, so an overloaded instance
 * answers quickly instead of letting every request time out.
 * @see https://github.com/fastify/under-pressure
 */
async function underPressurePlugin (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  if (opts.config.MAX_EVENT_LOOP_DELAY_MS === 0) return
  await app.register(underPressure, {
    maxEventLoopDelay: opts.config.MAX_EVENT_LOOP_DELAY_MS,
    sampleInterval: 250,
    retryAfter: 5,
    exposeStatusRoute: false,
  })
}

export default fp(underPressurePlugin, { name: 'under-pressure' })
