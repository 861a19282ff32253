import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../../config.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Adds a job that deletes rows nobody can use any more; it returns how many it deleted. */
    addPurgeJob: (name: string, job: () => Promise<number>) => void
    /** Runs every purge job now (the hourly timer does the same). */
    runHousekeeping: () => Promise<void>
  }
}

const INTERVAL_MS = 60 * 60 * 1000

/**
 * Hourly deletion of expired rows (idempotency keys, refresh tokens, web sessions, events and webhook
 * delivery attempts past their retention): they are never served, only take space. Every instance runs it; the deletes are
 * idempotent, so that is harmless.
 */
async function housekeepingPlugin (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const jobs = new Map<string, () => Promise<number>>()
  app.decorate('addPurgeJob', (name: string, job: () => Promise<number>) => { jobs.set(name, job) })
  app.decorate('runHousekeeping', async () => {
    for (const [name, job] of jobs) {
      try {
        const deleted = await job()
        if (deleted > 0) app.log.info({ event: 'housekeeping.purged', job: name, deleted }, `${name}: expired rows purged`)
      } catch (err) {
        // A missed round is harmless: the next one deletes the same rows.
        app.log.warn({ err, job: name }, `${name}: purge failed`)
      }
    }
  })
  const timer = setInterval(() => { void app.runHousekeeping() }, INTERVAL_MS).unref()
  app.addHook('onClose', async () => { clearInterval(timer) })

  app.addPurgeJob('idempotency keys', app.idempotencyKeysRepository.purgeExpired)
  app.addPurgeJob('refresh tokens', app.refreshTokensRepository.purgeExpired)
  app.addPurgeJob('one-time tokens', app.accountSecurityRepository.purgeExpired)
  app.addPurgeJob('single sign-on states', app.identitiesRepository.purgeExpired)
  app.addPurgeJob('events', async () => await app.eventsRepository.purgeOlderThan(opts.config.EVENTS_RETENTION_DAYS))
  app.addPurgeJob('webhook deliveries', async () => await app.webhooksRepository.purgeOlderThan(opts.config.EVENTS_RETENTION_DAYS))
}

export default fp(housekeepingPlugin, { name: 'housekeeping', dependencies: ['repositories'] })
