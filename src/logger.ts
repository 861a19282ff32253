import pino, { type DestinationStream, type LoggerOptions } from 'pino'
import type { Config } from './config.js'
import { traceLogFields } from './lib/tracing.js'

/** Body fields that hold secrets, redacted wherever a body or an error carrying one is logged. */
const secretFields = ['password', 'current_password', 'new_password', 'refresh_token', 'access_token', 'key']

/**
 * Pino settings: JSON lines; pretty only for a person at a terminal in development. Lines go to
 * `destination` (tests) or to stdout, asynchronously: while one write is in flight the next lines
 * are buffered and go out together, so the event loop never blocks on a log write. Pino flushes the
 * buffer when the process exits.
 * Redacted paths are spelled out: a leading wildcard (`*.password`) makes pino run the redactor on
 * every field of every line, which cost more than writing the access line itself.
 */
export function loggerOptions (config: Config, destination?: DestinationStream): LoggerOptions & { stream?: DestinationStream } {
  const pretty = process.stdout.isTTY && config.NODE_ENV === 'development'
  return {
    level: config.LOG_LEVEL,
    // With tracing on, a line written while a span is active names it: logs and traces join up.
    ...(config.OTEL_EXPORTER_OTLP_ENDPOINT === undefined ? {} : { mixin: traceLogFields }),
    redact: {
      paths: [
        'req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]', 'res.headers["set-cookie"]',
        ...secretFields.flatMap((field) => [`body.${field}`, `err.${field}`]),
      ],
      censor: '[redacted]',
    },
    ...(pretty
      ? { transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } }
      : { stream: destination ?? pino.destination({ dest: 1, sync: false }) }),
  }
}
