import type { Config } from './config.js'

/** Pino settings: JSON lines; pretty only for a person at a terminal in development. */
export function loggerOptions (config: Config) {
  const pretty = process.stdout.isTTY && config.NODE_ENV === 'development'
  return {
    level: config.LOG_LEVEL,
    redact: {
      paths: [
        'req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]', 'res.headers["set-cookie"]',
        '*.password', '*.current_password', '*.new_password', '*.refresh_token', '*.access_token', '*.key',
      ],
      censor: '[redacted]',
    },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } } : {}),
  }
}
