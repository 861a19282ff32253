import { availableParallelism } from 'node:os'
import tap from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'

tap.test('defaults fill every unset variable', async (t) => {
  const config = loadConfig({})
  t.match(config, { PORT: 3000, NODE_ENV: 'development', DATA_DIR: './.data', MIGRATE_ON_START: true, BODY_LIMIT: 1_048_576, ACCESS_TOKEN_TTL: 900, TRUST_PROXY: false })
  t.equal(config.DATABASE_URL, undefined)
  t.equal(config.DB_POOL_MAX, 2 * availableParallelism(), 'the pool fits the machine: two connections per core')
  t.equal(loadConfig({ DB_POOL_MAX: '25' }).DB_POOL_MAX, 25, 'unless set')
})

tap.test('values are converted from strings; empty strings count as unset', async (t) => {
  const config = loadConfig({ PORT: '8080', MIGRATE_ON_START: 'false', TRUST_PROXY: 'true', DATABASE_URL: '' })
  t.equal(config.PORT, 8080)
  t.equal(config.MIGRATE_ON_START, false)
  t.equal(config.TRUST_PROXY, true)
  t.equal(config.DATABASE_URL, undefined)
})

tap.test('every problem is reported at once, secrets hidden', async (t) => {
  const err = t.throws(() => loadConfig({ PORT: 'eighty', LOG_LEVEL: 'loud', JWT_SECRET: 'too-short', DATABASE_URL: 'mysql://x' })) as ConfigError
  t.ok(err instanceof ConfigError)
  t.equal(err.problems.length, 4, err.message)
  t.match(err.message, /PORT="eighty"/)
  t.match(err.message, /LOG_LEVEL="loud"/)
  t.match(err.message, /JWT_SECRET=\(hidden\)/)
  t.notMatch(err.message, /too-short/)
  t.match(err.message, /DATABASE_URL=/)
})

tap.test('ADMIN_USERNAME and ADMIN_PASSWORD come together', async (t) => {
  t.match(t.throws(() => loadConfig({ ADMIN_USERNAME: 'root' })), { problems: [/set both or neither/] })
})

tap.test('single sign-on: the provider and its client come together; http:// in production only to localhost names', async (t) => {
  const oidc = { OIDC_ISSUER: 'https://id.example.com', OIDC_CLIENT_ID: 'tasks', OIDC_CLIENT_SECRET: 'a client secret' }
  t.match(t.throws(() => loadConfig({ OIDC_ISSUER: oidc.OIDC_ISSUER })), { problems: [/set all three or none/] })
  const production = { NODE_ENV: 'production', SECRET_KEY: 'a-secret-that-is-at-least-32-bytes-long' }
  t.equal(loadConfig({ ...production, ...oidc }).OIDC_NAME, 'single sign-on')
  t.match(t.throws(() => loadConfig({ ...production, ...oidc, OIDC_ISSUER: 'http://id.example.com' })), { problems: [/must be https:\/\//] })
  t.ok(loadConfig({ ...production, ...oidc, OIDC_ISSUER: 'http://dex.localhost:5556/dex' }), 'the local stack\'s Dex')
  t.ok(loadConfig({ ...oidc, OIDC_ISSUER: 'http://id.example.com' }), 'anything outside production')
  const err = t.throws(() => loadConfig({ OIDC_CLIENT_SECRET: 'the client secret' })) as ConfigError
  t.notMatch(err.message, /the client secret/, 'the secret is never repeated')
})
