import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/** Expired keys are useless (they are taken over on reuse) but take space: drop them hourly. */
const PURGE_INTERVAL_MS = 60 * 60 * 1000

async function idempotencyPurgePlugin (app: FastifyInstance): Promise<void> {
  const purge = async () => {
    try {
      const deleted = await app.idempotencyKeysRepository.purgeExpired()
      if (deleted > 0) app.log.info({ event: 'idempotency.purged', deleted }, 'expired idempotency keys purged')
    } catch (err) {
      // A missed round is harmless: the next one deletes the same rows.
      app.log.warn({ err }, 'purging expired idempotency keys failed')
    }
  }
  const timer = setInterval(() => { void purge() }, PURGE_INTERVAL_MS).unref()
  app.addHook('onClose', async () => { clearInterval(timer) })
}

export default fp(idempotencyPurgePlugin, { name: 'idempotency-purge', dependencies: ['repositories'] })
