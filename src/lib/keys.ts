import { hkdfSync, randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Config, previousSecrets } from '../config.js'

/**
 * Every purpose a key is derived for, each named once: a key serves one purpose, so that a value
 * made for one (a cursor, a session cookie) is never accepted as another. Renaming a purpose
 * changes its key.
 */
export const keyPurposes = {
  tasksCursor: 'tasks-api/v1/tasks-cursor',
  usersCursor: 'tasks-api/v1/users-cursor',
  projectsCursor: 'tasks-api/v1/projects-cursor',
  membersCursor: 'tasks-api/v1/members-cursor',
  deliveriesCursor: 'tasks-api/v1/deliveries-cursor',
  pageTasksCursor: 'tasks-api/app/tasks-cursor',
  sessionCookie: 'tasks-api/app/session-cookie',
  accessToken: 'tasks-api/access-token',
  webhookSecret: 'tasks-api/webhook-secret',
  totpSecret: 'tasks-api/totp-secret',
  recoveryCode: 'tasks-api/recovery-code',
} as const
export type KeyPurpose = keyof typeof keyPurposes

/** The service's keys. */
export interface Keyring {
  /** The HS256 key of access tokens: JWT_SECRET when set, else derived from the root secret. */
  tokenSigning: string
  /**
   * A purpose's keys, 32 bytes each: the first, from the current root, makes new values; every one
   * (then those from SECRET_KEY_PREVIOUS) is accepted, so a rotation invalidates nothing at once.
   */
  keysFor: (purpose: KeyPurpose) => Buffer[]
}

/** The secrets the keys come from, as the configuration names them. */
export type Secrets = Partial<Pick<Config, 'SECRET_KEY' | 'SECRET_KEY_PREVIOUS' | 'JWT_SECRET'>>

function derive (root: string, purpose: KeyPurpose): Buffer {
  return Buffer.from(hkdfSync('sha256', root, '', keyPurposes[purpose], 32))
}

/**
 * Keys derived with HKDF-SHA256 from the root secret: SECRET_KEY, or else JWT_SECRET, which then
 * keeps its older double role (rotating it also ends web sessions and invalidates cursors).
 */
export function createKeyring (secrets: Secrets): Keyring {
  const root = secrets.SECRET_KEY ?? secrets.JWT_SECRET
  if (root === undefined) throw new Error('createKeyring: SECRET_KEY or JWT_SECRET is required')
  const roots = [root, ...previousSecrets(secrets.SECRET_KEY_PREVIOUS)]
  const derived = new Map<KeyPurpose, Buffer[]>()
  return {
    tokenSigning: secrets.JWT_SECRET ?? derive(root, 'accessToken').toString('base64url'),
    keysFor (purpose) {
      let keys = derived.get(purpose)
      if (keys === undefined) {
        keys = roots.map((secret) => derive(secret, purpose))
        derived.set(purpose, keys)
      }
      return keys
    },
  }
}

/**
 * The keys of a running service. Outside production, with neither SECRET_KEY nor JWT_SECRET, a
 * root secret is generated once and kept under DATA_DIR so that tokens and sessions survive
 * restarts; `warn` says so, as nobody should run like that in production (where the configuration
 * requires one of them). JWT_SECRET without SECRET_KEY is warned about too.
 */
export async function resolveKeyring (config: Config, warn: (message: string) => void): Promise<Keyring> {
  if (config.SECRET_KEY !== undefined) return createKeyring(config)
  if (config.JWT_SECRET !== undefined) {
    warn('SECRET_KEY is not set: cursor and session keys are derived from JWT_SECRET, so rotating it also ends every web session; set SECRET_KEY (docs/operations.md, "Secrets and their rotation")')
    return createKeyring(config)
  }
  const file = join(config.DATA_DIR, 'secret-key')
  const existing = (await readFile(file, 'utf8').catch(() => '')).trim()
  if (existing.length >= 32) {
    warn(`SECRET_KEY is not set; using the development secret in ${file}`)
    return createKeyring({ SECRET_KEY: existing })
  }
  await mkdir(config.DATA_DIR, { recursive: true })
  const secret = randomBytes(48).toString('base64url')
  await writeFile(file, secret + '\n', { mode: 0o600 })
  warn(`SECRET_KEY is not set; generated a development secret in ${file}`)
  return createKeyring({ SECRET_KEY: secret })
}
