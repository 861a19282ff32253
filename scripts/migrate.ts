/** `npm run db:migrate`: applies pending migrations to DATABASE_URL, or to the embedded database. */
import { loadConfig } from '../src/config.js'
import { openConfiguredDatabase } from '../src/db/open.js'

const config = loadConfig({ ...process.env, MIGRATE_ON_START: 'true' })
const database = await openConfiguredDatabase(config)
await database.close()
process.stdout.write(`migrations applied (${database.driver})\n`)
