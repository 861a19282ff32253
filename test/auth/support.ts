/** Helpers shared by the auth tests; the general ones live in test/helper.ts. */
import { Writable } from 'node:stream'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { eq } from 'drizzle-orm'
import { buildApp } from '../../src/app.js'
import { createKeyring } from '../../src/lib/keys.js'
import { users } from '../../src/db/schema.js'
import { hashPassword } from '../../src/lib/passwords.js'
import { JWT_SECRET, type T, type TestUser, testConfig, testDatabase, uniqueName } from '../helper.js'

/**
 * Limits high enough that tests which are not about rate limiting never meet one. Load shedding is
 * off too: the embedded database's start-up work on the event loop would trip it at random.
 */
export const relaxedLimits = { AUTH_RATE_LIMIT_MAX: '10000', LOGIN_FAILURES_MAX: '10000', RATE_LIMIT_MAX: '10000', MAX_EVENT_LOOP_DELAY_MS: '0' }

export interface Probe { app: FastifyInstance, logs: () => string }

/**
 * The real app plus probe routes that need a scope (to test authorization without depending on
 * other resources' routes), with its log lines captured at `info` and no redaction, so a test sees
 * whatever the code itself writes.
 */
export async function buildProbe (t: T, overrides: Record<string, string> = {}): Promise<Probe> {
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _enc, done) { lines.push(String(chunk)); done() } })
  const app = await buildApp({
    config: testConfig({ ...relaxedLimits, ...overrides }),
    database: await testDatabase(),
    keys: createKeyring({ JWT_SECRET }),
    keepDatabaseOpen: true,
    logger: { level: 'info', stream },
  })
  app.get('/v1/probe/read', { config: { auth: { scopes: ['tasks:read'] } }, schema: { hide: true } }, async (request) => ({ user: request.auth!.userId, via: request.auth!.method }))
  app.get('/v1/probe/write', { config: { auth: { scopes: ['tasks:write'] } }, schema: { hide: true } }, async (request) => ({ user: request.auth!.userId }))
  t.teardown(() => app.close())
  await app.ready()
  return { app, logs: () => lines.join('') }
}

export async function login (app: FastifyInstance, username: string, password: string): Promise<LightMyRequestResponse> {
  return await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username, password } })
}

/** A user made an admin directly in the database (the API has no way to make the first one). */
export async function createAdmin (app: FastifyInstance): Promise<TestUser> {
  const username = uniqueName('admin')
  const password = `pw-${username}-secret`
  await app.usersRepository.create({ username, passwordHash: await hashPassword(password), role: 'admin' })
  const res = await login(app, username, password)
  const tokens = res.json<{ access_token: string, refresh_token: string }>()
  const [row] = await app.db.select({ id: users.id }).from(users).where(eq(users.username, username))
  return { id: row!.id, username, password, accessToken: tokens.access_token, refreshToken: tokens.refresh_token }
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
