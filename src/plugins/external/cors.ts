import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import cors from '@fastify/cors'
import type { Config } from '../../config.js'

/**
 * CORS is off unless `CORS_ORIGINS` lists the origins allowed to call the API from a browser.
 * @see https://github.com/fastify/fastify-cors
 */
async function corsPlugin (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const origins = opts.config.CORS_ORIGINS?.split(',').map((o) => o.trim()).filter((o) => o !== '') ?? []
  if (origins.length === 0) return
  await app.register(cors, {
    origin: origins,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type', 'If-Match', 'If-None-Match', 'Idempotency-Key', 'X-API-Key', 'X-Request-Id'],
    exposedHeaders: ['ETag', 'Location', 'Link', 'Retry-After', 'X-Request-Id', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'],
    maxAge: 600,
  })
}

export default fp(corsPlugin, { name: 'cors' })
