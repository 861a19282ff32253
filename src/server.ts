import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { type Config, ConfigError, loadConfig } from './config.js'
import { openConfiguredDatabase } from './db/open.js'
import { resolveJwtSecret } from './lib/jwt-secret.js'
import { loggerOptions } from './logger.js'

async function main (): Promise<void> {
  let config: Config
  try {
    config = loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(err.message + '\n')
      process.exit(1)
    }
    throw err
  }
  const warnings: string[] = []
  const jwtSecret = await resolveJwtSecret(config, (m) => warnings.push(m))
  const database = await openConfiguredDatabase(config)
  const app = await buildApp({ config, database, jwtSecret, logger: loggerOptions(config) })
  for (const warning of warnings) app.log.warn(warning)

  // On SIGTERM/SIGINT: report not-ready, give load balancers SHUTDOWN_DRAIN_MS to notice, then stop
  // accepting connections, finish in-flight requests and close the pool. Past SHUTDOWN_TIMEOUT_MS
  // close-with-grace gives up and exits 1.
  closeWithGrace({ delay: config.SHUTDOWN_DRAIN_MS + config.SHUTDOWN_TIMEOUT_MS }, async ({ signal, err }) => {
    if (err !== undefined) app.log.error({ err }, 'closing after an uncaught error')
    else app.log.info({ signal }, 'shutting down')
    app.shuttingDown = true
    if (config.SHUTDOWN_DRAIN_MS > 0) await new Promise((resolve) => setTimeout(resolve, config.SHUTDOWN_DRAIN_MS))
    await app.close()
    app.log.info('closed')
  })

  await app.listen({ port: config.PORT, host: config.HOST })
  app.log.info({ database: database.driver }, `ready: http://localhost:${config.PORT}/docs`)
}

await main().catch((err: unknown) => {
  // Start-up failures (database unreachable, data directory in use, ...) end the process with a
  // message meant for the operator rather than a stack trace.
  process.stderr.write(`tasks-api failed to start: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
