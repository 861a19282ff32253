import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/**
 * One log line per request, written when the response is done: method, route template, status,
 * duration and (through the request's child logger) the request id. Replaces Fastify's two lines
 * per request ("incoming" + "completed"), which cost twice as much and lacked the route.
 */
async function accessLogPlugin (app: FastifyInstance): Promise<void> {
  app.addHook('onResponse', async (request, reply) => {
    const status = reply.statusCode
    const line = {
      method: request.method,
      route: request.routeOptions.url ?? null,
      url: request.url,
      status,
      duration_ms: Math.round(reply.elapsedTime * 100) / 100,
      user_id: request.auth?.userId,
    }
    if (status >= 500) request.log.error(line, 'request failed')
    else request.log.info(line, 'request completed')
  })
}

export default fp(accessLogPlugin, { name: 'access-log', dependencies: ['authentication'] })
