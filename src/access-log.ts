import { type FastifyReply, type FastifyRequest, LogController } from 'fastify'

/**
 * Fastify's request log lines, replaced by one line per request written when the response is
 * done: request id, method, route template, status, duration and the caller. Fastify's default is
 * two lines ("incoming", "completed"), which cost twice as much and lack the route. The line goes
 * through the root logger with the request id in it, so a request that logs nothing else never
 * needs a logger of its own (see request-logger.ts). With tracing on, it carries the request span's ids.
 */
export class AccessLog extends LogController {
  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const line = {
      [this.requestIdLogLabel]: request.id,
      method: request.method,
      route: request.routeOptions.url ?? null,
      url: request.url,
      status: reply.statusCode,
      duration_ms: Math.round(reply.elapsedTime * 100) / 100,
      user_id: request.auth?.userId,
    }
    if (request.traceIds) Object.assign(line, request.traceIds)
    const log = request.server.log
    if (error) log.error({ ...line, err: error }, 'request errored')
    else if (reply.statusCode >= 500) log.error(line, 'request failed')
    else log.info(line, 'request completed')
  }
}
