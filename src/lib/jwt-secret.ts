import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Config } from '../config.js'

/**
 * The configured JWT_SECRET; outside production, when none is set, a random one generated once and
 * kept under DATA_DIR so tokens survive restarts. `warn` says so, as nobody should run like that
 * in production (where the config schema makes JWT_SECRET required).
 */
export async function resolveJwtSecret (config: Config, warn: (message: string) => void): Promise<string> {
  if (config.JWT_SECRET !== undefined) return config.JWT_SECRET
  const file = join(config.DATA_DIR, 'jwt-secret')
  const existing = await readFile(file, 'utf8').catch(() => undefined)
  if (existing !== undefined && existing.trim().length >= 32) {
    warn(`JWT_SECRET is not set; using the development secret in ${file}`)
    return existing.trim()
  }
  await mkdir(config.DATA_DIR, { recursive: true })
  const secret = randomBytes(48).toString('base64url')
  await writeFile(file, secret + '\n', { mode: 0o600 })
  warn(`JWT_SECRET is not set; generated a development secret in ${file}`)
  return secret
}
