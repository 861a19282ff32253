import type { Config } from '../config.js'
import { type DatabaseHandle, openPglite, openPostgres } from './client.js'
import { migratePglite, migratePostgres } from './migrate.js'

/**
 * The database the config names: PostgreSQL at DATABASE_URL, or embedded PGlite under DATA_DIR.
 * Pending migrations are applied first unless MIGRATE_ON_START is false.
 */
export async function openConfiguredDatabase (config: Config): Promise<DatabaseHandle> {
  if (config.DATABASE_URL !== undefined) {
    if (config.MIGRATE_ON_START) await migratePostgres(config.DATABASE_URL)
    return await openPostgres({
      url: config.DATABASE_URL,
      poolMax: config.DB_POOL_MAX,
      statementTimeoutMs: config.DB_STATEMENT_TIMEOUT_MS,
      connectTimeoutMs: config.DB_CONNECT_TIMEOUT_MS,
      acquireTimeoutMs: config.DB_ACQUIRE_TIMEOUT_MS,
      ...(config.DATABASE_LISTEN_URL !== undefined ? { listenUrl: config.DATABASE_LISTEN_URL } : {}),
    })
  }
  const handle = await openPglite(config.DATA_DIR)
  if (config.MIGRATE_ON_START) await migratePglite(handle)
  return handle
}
