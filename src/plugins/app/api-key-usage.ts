import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../../config.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Notes that an API key authenticated a request now; written to `last_used_at` within API_KEY_USAGE_FLUSH_MS. */
    recordApiKeyUse: (keyId: string) => void
  }
}

/**
 * API keys' `last_used_at`, collected in memory and written in one statement per interval (and on
 * close), not one per request.
 */
async function apiKeyUsagePlugin (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  let keyUses = new Map<string, Date>()
  async function flushKeyUses (): Promise<void> {
    const uses = keyUses
    keyUses = new Map()
    await app.apiKeysRepository.recordUsage(uses).catch((err: unknown) => { app.log.warn({ err }, 'could not record API key usage') })
  }
  const flushTimer = setInterval(() => { void flushKeyUses() }, opts.config.API_KEY_USAGE_FLUSH_MS).unref()
  app.addHook('onClose', async () => {
    clearInterval(flushTimer)
    await flushKeyUses()
  })
  app.decorate('recordApiKeyUse', (keyId: string) => { keyUses.set(keyId, new Date()) })
}

export default fp(apiKeyUsagePlugin, { name: 'api-key-usage', dependencies: ['repositories'] })
