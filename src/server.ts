import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { type Config, ConfigError, loadConfig } from './config.js'
import { openConfiguredDatabase } from './db/open.js'
import { trackConnections } from './lib/connection-drain.js'
import { resolveKeyring } from './lib/keys.js'
import { loggerOptions } from './logger.js'
import { startTracing } from './tracing.js'

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
  // Before the app is built, so that its plugins find the SDK in place.
  const tracing = await startTracing(config)
  const warnings: string[] = []
  const keys = await resolveKeyring(config, (m) => warnings.push(m))
  const database = await openConfiguredDatabase(config)
  const app = await buildApp({ config, database, keys, logger: loggerOptions(config) })
  for (const warning of warnings) app.log.warn(warning)

  const connections = trackConnections(app.server)
  // On SIGTERM/SIGINT: report not-ready and answer with `Connection: close`; give load balancers
  // SHUTDOWN_DRAIN_MS to notice; stop accepting connections; end the event streams; answer every request already read and
  // close the connections; close the pool. Connections still busy after SHUTDOWN_TIMEOUT_MS are cut
  // off; if closing hangs past that, close-with-grace exits 1.
  const closingMs = 5_000
  closeWithGrace({ delay: config.SHUTDOWN_DRAIN_MS + config.SHUTDOWN_TIMEOUT_MS + closingMs }, async ({ signal, err }) => {
    if (err !== undefined) app.log.error({ err }, 'closing after an uncaught error')
    else app.log.info({ signal }, 'shutting down')
    if (config.SHUTDOWN_DRAIN_MS > 0) {
      app.shuttingDown = true
      await new Promise((resolve) => setTimeout(resolve, config.SHUTDOWN_DRAIN_MS))
    }
    await connections.stopListening()
    app.shuttingDown = true
    // Streams never end by themselves: ended here, their clients reconnect to another instance.
    app.eventStreams.endAll()
    const { idleClosed, remaining } = await connections.drain(config.SHUTDOWN_TIMEOUT_MS)
    app.log.info({ idle_closed: idleClosed, cut_off: remaining }, 'connections closed')
    app.server.closeAllConnections()
    await app.close()
    await tracing?.shutdown()
    app.log.info('closed')
  })

  await app.listen({ port: config.PORT, host: config.HOST })
  app.log.info({ database: database.driver, tracing: config.OTEL_EXPORTER_OTLP_ENDPOINT ?? false }, `ready: ${config.TLS_CERT === undefined ? 'http' : 'https'}://localhost:${config.PORT}/docs`)
}

await main().catch((err: unknown) => {
  // Start-up failures (database unreachable, data directory in use, ...) end the process with a
  // message meant for the operator rather than a stack trace.
  process.stderr.write(`tasks-api failed to start: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
