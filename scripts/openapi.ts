/**
 * Writes the OpenAPI document the code describes to `openapi.json` (or prints it with --stdout).
 * Needs no database: the app is built over a connection that is never opened.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { buildApp } from '../src/app.js'
import { createKeyring } from '../src/lib/keys.js'
import { loadConfig } from '../src/config.js'
import { openPostgres } from '../src/db/client.js'
import { projectRoot } from '../src/lib/project-root.js'
import { runsAsScript } from './run-as-script.js'

export async function generateOpenApi (): Promise<string> {
  // Fixed settings, so the document never depends on who runs the script where; no webhook
  // deliveries, whose first poll of the absent database would hold `close` for the acquire timeout.
  const config = loadConfig({ NODE_ENV: 'test', PORT: '3000', WEBHOOK_DELIVERY: 'false' })
  const database = await openPostgres({ url: 'postgres://openapi@127.0.0.1:1/none', poolMax: 1, statementTimeoutMs: 0 })
  const app = await buildApp({ config, database, keys: createKeyring({ SECRET_KEY: 'x'.repeat(32) }) })
  await app.ready()
  const document = JSON.stringify(app.swagger(), null, 2) + '\n'
  await app.close()
  return document
}

if (runsAsScript('openapi')) {
  const document = await generateOpenApi()
  if (process.argv.includes('--stdout')) process.stdout.write(document)
  else await writeFile(join(projectRoot, 'openapi.json'), document)
}
