import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import underPressure from '@fastify/under-pressure'
import type { Config } from '../../config.js'
import { problem } from '../../errors.js'

const SAMPLE_INTERVAL_MS = 250

/**
 * Sheds load with 503 + Retry-After when the event loop is saturated, so an overloaded instance
 * answers quickly instead of letting every request time out.
 * @see https://github.com/fastify/under-pressure
 */
async function underPressurePlugin (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  if (opts.config.MAX_EVENT_LOOP_DELAY_MS === 0) return
  // Loading code at start blocks the loop for a while; that is not overload, so shedding is armed
  // only once the samples taken since the app became ready are all that count.
  let armedAt = Number.POSITIVE_INFINITY
  app.addHook('onReady', async () => { armedAt = Date.now() + 4 * SAMPLE_INTERVAL_MS })
  await app.register(underPressure, {
    maxEventLoopDelay: opts.config.MAX_EVENT_LOOP_DELAY_MS,
    sampleInterval: SAMPLE_INTERVAL_MS,
    exposeStatusRoute: false,
    // Called only while under pressure; a rejection becomes the 503 problem.
    pressureHandler: async () => {
      if (Date.now() >= armedAt) throw problem('SERVICE_UNAVAILABLE', 'The server is overloaded; retry shortly.', { headers: { 'retry-after': '5' } })
    },
  })
}

export default fp(underPressurePlugin, { name: 'under-pressure' })
