import { type Static, Type } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { availableParallelism } from 'node:os'

// PostgreSQL's rule of thumb is about two connections per core; more only queue on CPU and row
// locks and cost PostgreSQL more per statement (see Performance in the README).
const DEFAULT_POOL_MAX = Math.min(200, 2 * availableParallelism())

/** Environment variables, validated once at start. Names match ../shared/API.md. */
export const ConfigSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], { default: 'development' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  HOST: Type.String({ minLength: 1, default: '0.0.0.0' }),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DATA_DIR: Type.String({ minLength: 1, default: './.data' }),
  MIGRATE_ON_START: Type.Boolean({ default: true }),
  DB_POOL_MAX: Type.Integer({ minimum: 1, maximum: 200, default: DEFAULT_POOL_MAX, description: 'PostgreSQL connections per instance; default twice the CPU cores this process may use' }),
  DB_CONNECT_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60_000, default: 3_000, description: 'a PostgreSQL connection not established by then fails' }),
  DB_ACQUIRE_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60_000, default: 5_000, description: 'a query that has waited this long for a connection fails with 503 without having run' }),
  DB_STATEMENT_TIMEOUT_MS: Type.Integer({ minimum: 0, default: 10_000, description: 'PostgreSQL cancels a statement running longer (503); 0 turns it off' }),
  JWT_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  JWT_ISSUER: Type.String({ minLength: 1, default: 'tasks-api' }),
  JWT_AUDIENCE: Type.String({ minLength: 1, default: 'tasks-api' }),
  ACCESS_TOKEN_TTL: Type.Integer({ minimum: 10, maximum: 86_400, default: 900, description: 'seconds' }),
  REFRESH_TOKEN_TTL: Type.Integer({ minimum: 60, maximum: 31_536_000, default: 2_592_000, description: 'seconds' }),
  ADMIN_USERNAME: Type.Optional(Type.String({ minLength: 3, maxLength: 32, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' })),
  ADMIN_PASSWORD: Type.Optional(Type.String({ minLength: 8, maxLength: 128 })),
  TRUST_PROXY: Type.Boolean({ default: false }),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  REDIS_KEY_PREFIX: Type.String({ minLength: 1, maxLength: 100, default: 'tasks-api:rate-limit:', description: 'namespace of the rate-limit counters in Redis' }),
  RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 600, description: 'requests per RATE_LIMIT_WINDOW per user or API key' }),
  RATE_LIMIT_WINDOW: Type.Integer({ minimum: 1, default: 60, description: 'seconds' }),
  AUTH_RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 10, description: 'requests per AUTH_RATE_LIMIT_WINDOW per client IP to each of signup, login, token, refresh and logout' }),
  AUTH_RATE_LIMIT_WINDOW: Type.Integer({ minimum: 1, default: 60, description: 'seconds' }),
  LOGIN_FAILURES_MAX: Type.Integer({ minimum: 1, default: 5, description: 'failed logins per LOGIN_FAILURES_WINDOW per username before further attempts are refused' }),
  LOGIN_FAILURES_WINDOW: Type.Integer({ minimum: 1, default: 900, description: 'seconds' }),
  API_KEY_USAGE_FLUSH_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 60_000, description: 'how often API keys\' last_used_at is written' }),
  // OWASP session management: 15-30 min idle for a low-risk application, a working day absolute.
  SESSION_IDLE_TTL: Type.Integer({ minimum: 60, maximum: 86_400, default: 1800, description: 'seconds a web session (/app) lives without a request' }),
  SESSION_ABSOLUTE_TTL: Type.Integer({ minimum: 300, maximum: 2_592_000, default: 28_800, description: 'seconds a web session lives after login, however active' }),
  CORS_ORIGINS: Type.Optional(Type.String({ minLength: 1, description: 'comma-separated origins' })),
  BODY_LIMIT: Type.Integer({ minimum: 1024, maximum: 104_857_600, default: 1_048_576 }),
  REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 600_000, default: 10_000 }),
  SHUTDOWN_DRAIN_MS: Type.Integer({ minimum: 0, maximum: 60_000, default: 0, description: 'after SIGTERM, answer /health/ready 503 this long before closing, so load balancers stop routing here' }),
  SHUTDOWN_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 120_000, default: 10_000, description: 'in-flight requests get this long to finish on shutdown' }),
  MAX_EVENT_LOOP_DELAY_MS: Type.Integer({ minimum: 0, default: 1000, description: 'shed load with 503 past this event-loop delay; 0 turns it off' }),
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 16, description: 'GET /metrics then requires `Authorization: Bearer <METRICS_TOKEN>`' })),
  METRICS_PORT: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'serve GET /metrics on a listener of its own at this port, and not on PORT' })),
  METRICS_HOST: Type.String({ minLength: 1, default: '127.0.0.1', description: 'the address of the METRICS_PORT listener' }),
})
export type Config = Static<typeof ConfigSchema>

export class ConfigError extends Error {
  constructor (readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    this.name = 'ConfigError'
  }
}

/**
 * Reads the environment into a typed Config: empty strings count as unset, defaults fill the rest,
 * and every problem is reported at once so an operator fixes them in one go.
 */
export function loadConfig (env: NodeJS.ProcessEnv = process.env): Config {
  const raw: Record<string, unknown> = {}
  for (const key of Object.keys(ConfigSchema.properties)) {
    const value = env[key]
    if (value !== undefined && value !== '') raw[key] = value
  }
  const converted = Value.Convert(ConfigSchema, Value.Default(ConfigSchema, raw))
  const problems = [...Value.Errors(ConfigSchema, converted)].map((e) => {
    const name = e.path.slice(1)
    const shown = name === 'JWT_SECRET' || name === 'ADMIN_PASSWORD' || name === 'METRICS_TOKEN' ? '(hidden)' : JSON.stringify(raw[name])
    return `${name}=${shown}: ${e.message}`
  })
  const config = converted as Config
  if (problems.length === 0) {
    if (config.NODE_ENV === 'production' && config.JWT_SECRET === undefined) {
      problems.push('JWT_SECRET: required when NODE_ENV=production (at least 32 bytes)')
    }
    if ((config.ADMIN_USERNAME === undefined) !== (config.ADMIN_PASSWORD === undefined)) {
      problems.push('ADMIN_USERNAME and ADMIN_PASSWORD: set both or neither')
    }
    if (config.METRICS_PORT !== undefined && config.METRICS_PORT === config.PORT) {
      problems.push('METRICS_PORT: must differ from PORT')
    }
    if (config.ADMIN_PASSWORD !== undefined && config.ADMIN_PASSWORD.toLowerCase() === config.ADMIN_USERNAME?.toLowerCase()) {
      problems.push('ADMIN_PASSWORD: must not equal ADMIN_USERNAME')
    }
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return config
}
