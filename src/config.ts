import { type Static, Type } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { availableParallelism } from 'node:os'
import { parseSigningKeys } from './lib/signing-keys.js'

// PostgreSQL's rule of thumb is about two connections per core; more only queue on CPU and row
// locks and cost PostgreSQL more per statement (the measurements are in docs/performance.md).
// docs/configuration.md prints the rule from DB_POOL_MAX's description, not this machine's number.
const DEFAULT_POOL_MAX = Math.min(200, 2 * availableParallelism())

/**
 * Environment variables, validated once at start. Names match the API contract. Each variable's
 * `description` is its row in docs/configuration.md (`npm run docs:config` writes it); a default
 * computed from the machine is stated in words in the description, after `Default:`.
 */
export const ConfigSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], { default: 'development', description: '`production` requires SECRET_KEY (or JWT_SECRET), never pretty-prints logs and serves GET /metrics on PORT only with METRICS_TOKEN set; `development` re-reads the web templates at every render, so edits show without a restart' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000, description: 'TCP port of the HTTP listener: the API, /docs, /app and /health' }),
  HOST: Type.String({ minLength: 1, default: '0.0.0.0', description: 'address the HTTP listener binds to' }),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info', description: 'pino level of the JSON log lines on stdout' }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://', description: 'PostgreSQL connection URL; unset = the embedded PostgreSQL (PGlite) under DATA_DIR' })),
  DATA_DIR: Type.String({ minLength: 1, default: './.data', description: 'directory of the embedded database and, when SECRET_KEY and JWT_SECRET are unset outside production, of the generated development root secret (secret-key)' }),
  MIGRATE_ON_START: Type.Boolean({ default: true, description: 'apply pending migrations at start, under an advisory lock on PostgreSQL; false = run `npm run db:migrate` as a step of its own' }),
  DATABASE_LISTEN_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://', description: 'a direct PostgreSQL connection (not through PgBouncer in transaction mode, which keeps no sessions) for the LISTEN that wakes the live event streams of every instance; unset = DATABASE_URL. Unused when REDIS_URL is set: streams are then woken through Redis' })),
  DB_POOL_MAX: Type.Integer({ minimum: 1, maximum: 200, default: DEFAULT_POOL_MAX, description: 'PostgreSQL connections per instance. Default: twice the CPU cores this process may use, at most 200' }),
  DB_CONNECT_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60_000, default: 3_000, description: 'a PostgreSQL connection not established by then fails' }),
  DB_ACQUIRE_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60_000, default: 5_000, description: 'a query that has waited this long for a connection fails with 503 without having run' }),
  DB_STATEMENT_TIMEOUT_MS: Type.Integer({ minimum: 0, default: 10_000, description: 'PostgreSQL cancels a statement running longer (503); 0 turns it off' }),
  SECRET_KEY: Type.Optional(Type.String({ minLength: 32, description: 'root secret: the keys of paging cursors and web session cookies (and of access tokens, when JWT_SECRET is unset) are derived from it, one per purpose (HKDF-SHA256). Required in production unless JWT_SECRET is set, which then serves as the root as in earlier versions; otherwise generated once into DATA_DIR/secret-key' })),
  SECRET_KEY_PREVIOUS: Type.Optional(Type.String({ minLength: 32, description: 'comma-separated earlier values of SECRET_KEY, still accepted after a rotation: web sessions and cursors made with them keep working (new ones use SECRET_KEY); drop them after SESSION_ABSOLUTE_TTL' })),
  JWT_SECRET: Type.Optional(Type.String({ minLength: 32, description: 'HS256 key that signs access tokens, rotated on its own: changing it invalidates access tokens only, and clients refresh. Unset = derived from SECRET_KEY' })),
  JWT_SIGNING_KEYS: Type.Optional(Type.String({ minLength: 2, description: 'a JSON Web Key set (`{"keys":[…]}`) of Ed25519 or P-256 private keys, each with a `kid`: access tokens are then signed EdDSA or ES256 by the first key, with its `kid` in the header, and `GET /.well-known/jwks.json` publishes the public keys so that other services can verify them. Tokens of any listed key are accepted. Rotate by adding the new key second, then moving it first, then dropping the old one after ACCESS_TOKEN_TTL. Unset = HS256 with JWT_SECRET' })),
  JWT_ISSUER: Type.String({ minLength: 1, default: 'tasks-api', description: '`iss` of access tokens, checked on every request' }),
  JWT_AUDIENCE: Type.String({ minLength: 1, default: 'tasks-api', description: '`aud` of access tokens, checked on every request' }),
  ACCESS_TOKEN_TTL: Type.Integer({ minimum: 10, maximum: 86_400, default: 900, description: 'seconds an access token is valid' }),
  EVENTS_RETENTION_DAYS: Type.Integer({ minimum: 1, maximum: 3650, default: 30, description: 'days the change feed (`GET /v1/events`) keeps events, and webhooks their delivery attempts; an older `after` is a 410 SYNC_EXPIRED' }),
  EVENTS_STREAM_HEARTBEAT_MS: Type.Integer({ minimum: 100, maximum: 60_000, default: 15_000, description: 'a live event stream (`GET /v1/events/stream`) sends a comment line this often, so that proxies keep it open' }),
  EVENTS_STREAM_POLL_MS: Type.Integer({ minimum: 50, maximum: 60_000, default: 500, description: 'how often an instance with open event streams reads the feed without being woken (a wake-up lost, or events held back by an older transaction): the longest an event can wait to reach a stream' }),
  EVENTS_STREAM_MAX_BUFFER_BYTES: Type.Integer({ minimum: 16_384, maximum: 67_108_864, default: 1_048_576, description: 'an event stream whose reader leaves more than this unread is cut off, to resume with Last-Event-ID, instead of growing the server\'s memory' }),
  WEBHOOK_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60_000, default: 10_000, description: 'a webhook delivery attempt not answered by then fails, and is retried' }),
  WEBHOOK_RETRY_SCHEDULE: Type.String({ pattern: '^[0-9]{1,7}(,[0-9]{1,7}){0,19}$', default: '5,300,1800,7200,18000,36000,36000', description: 'seconds between a webhook delivery\'s attempts, comma-separated, each with ±25% jitter; after the last, the delivery has failed. A `Retry-After` on 429 or 503 waits longer when it asks to' }),
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: Type.Boolean({ default: false, description: 'let webhook URLs use http and reach loopback, private and link-local addresses: for development and tests only' }),
  WEBHOOK_DELIVERY: Type.Boolean({ default: true, description: 'whether this instance dispatches and delivers webhooks; false for instances that only serve the API while others deliver' }),
  WEBHOOK_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 256, default: 32, description: 'webhook delivery attempts each instance makes at once' }),
  REFRESH_TOKEN_TTL: Type.Integer({ minimum: 60, maximum: 31_536_000, default: 2_592_000, description: 'seconds a refresh token is valid' }),
  ADMIN_USERNAME: Type.Optional(Type.String({ minLength: 3, maxLength: 32, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$', description: 'with ADMIN_PASSWORD (set both or neither): created as an admin at start unless a user of that name exists (which is then left as it is)' })),
  ADMIN_PASSWORD: Type.Optional(Type.String({ minLength: 8, maxLength: 128, description: 'password of ADMIN_USERNAME; must differ from the username, ignoring case' })),
  TLS_CERT: Type.Optional(Type.String({ minLength: 1, description: 'path of a PEM certificate (chain): with TLS_KEY, the listener speaks HTTPS itself instead of leaving TLS to a proxy' })),
  TLS_KEY: Type.Optional(Type.String({ minLength: 1, description: 'path of the PEM private key of TLS_CERT' })),
  TLS_CLIENT_CA: Type.Optional(Type.String({ minLength: 1, description: 'path of the PEM certificate(s) of the CA that signs client certificates: with TLS_CERT, clients are asked for one, and API keys bound to a certificate (`client_cert_sha256`) work only on connections that present it. Clients without one are still served' })),
  TRUST_PROXY: Type.Boolean({ default: false, description: 'behind a reverse proxy: take the client address from X-Forwarded-For and the protocol from X-Forwarded-Proto' }),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://', description: 'Redis holding the rate-limit and failed-login counters, shared by every instance, and carrying the wake-ups of the live event streams between instances (instead of LISTEN/NOTIFY); unset = counters in memory, per instance' })),
  REDIS_KEY_PREFIX: Type.String({ minLength: 1, maxLength: 100, default: 'tasks-api:rate-limit:', description: 'namespace of the rate-limit counters in Redis' }),
  RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 600, description: 'requests per RATE_LIMIT_WINDOW per user or API key' }),
  RATE_LIMIT_WINDOW: Type.Integer({ minimum: 1, default: 60, description: 'seconds of the RATE_LIMIT_MAX window' }),
  AUTH_RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 10, description: 'requests per AUTH_RATE_LIMIT_WINDOW per client IP to each of signup, login, token, refresh and logout' }),
  AUTH_RATE_LIMIT_WINDOW: Type.Integer({ minimum: 1, default: 60, description: 'seconds of the AUTH_RATE_LIMIT_MAX window' }),
  LOGIN_FAILURES_MAX: Type.Integer({ minimum: 1, default: 5, description: 'failed logins per LOGIN_FAILURES_WINDOW per username before further attempts are refused' }),
  LOGIN_FAILURES_WINDOW: Type.Integer({ minimum: 1, default: 900, description: 'seconds of the LOGIN_FAILURES_MAX window' }),
  API_KEY_USAGE_FLUSH_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 60_000, description: 'how often API keys\' last_used_at is written' }),
  // OWASP session management: 15-30 min idle for a low-risk application, a working day absolute.
  SESSION_IDLE_TTL: Type.Integer({ minimum: 60, maximum: 86_400, default: 1800, description: 'seconds a web session (/app) lives without a request' }),
  SESSION_ABSOLUTE_TTL: Type.Integer({ minimum: 300, maximum: 2_592_000, default: 28_800, description: 'seconds a web session lives after login, however active' }),
  CORS_ORIGINS: Type.Optional(Type.String({ minLength: 1, description: 'comma-separated origins allowed to call the API from a browser; unset = CORS off' })),
  BODY_LIMIT: Type.Integer({ minimum: 1024, maximum: 104_857_600, default: 1_048_576, description: 'largest request body in bytes; larger ones are answered 413' }),
  REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 600_000, default: 10_000, description: 'a request not received in full by then is answered 408' }),
  SHUTDOWN_DRAIN_MS: Type.Integer({ minimum: 0, maximum: 60_000, default: 0, description: 'after SIGTERM, answer /health/ready 503 this long before closing, so load balancers stop routing here' }),
  SHUTDOWN_TIMEOUT_MS: Type.Integer({ minimum: 1000, maximum: 120_000, default: 10_000, description: 'in-flight requests get this long to finish on shutdown' }),
  MAX_EVENT_LOOP_DELAY_MS: Type.Integer({ minimum: 0, default: 1000, description: 'shed load with 503 past this event-loop delay; 0 turns it off' }),
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 16, description: 'GET /metrics then requires `Authorization: Bearer <METRICS_TOKEN>`' })),
  METRICS_PORT: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'serve GET /metrics on a listener of its own at this port, and not on PORT (so it must differ from PORT)' })),
  METRICS_HOST: Type.String({ minLength: 1, default: '127.0.0.1', description: 'the address of the METRICS_PORT listener' }),
  SMTP_URL: Type.Optional(Type.String({ pattern: '^smtps?://', description: 'the SMTP server that sends email verification and password reset mail, e.g. `smtp://user:pass@mail.example.com:587` (STARTTLS when offered) or `smtps://…:465`; unset = outside production the messages are written to the log, in production those endpoints answer 503 MAIL_UNAVAILABLE' })),
  MAIL_FROM: Type.String({ minLength: 3, maxLength: 254, default: 'Tasks API <no-reply@localhost>', description: 'the From of the mail the service sends' }),
  PUBLIC_URL: Type.Optional(Type.String({ pattern: '^https?://[^/?#]+$', description: 'the service\'s address as its users reach it (scheme and host, no path), e.g. `https://tasks.example.com`: links in mail point there. Unset = the address of the request that caused the mail (honouring X-Forwarded-Proto and -Host with TRUST_PROXY); set it in production, so that a forged Host header cannot redirect a link' })),
  OTEL_EXPORTER_OTLP_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://', description: 'an OTLP/HTTP collector (Jaeger, the OpenTelemetry Collector, …), e.g. `http://localhost:4318`: turns tracing on, spans going to `<endpoint>/v1/traces`. The OpenTelemetry SDK also reads its own variables (OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, default every trace unless the caller\'s `traceparent` says not sampled). Unset = no tracing, at no cost' })),
  OTEL_SERVICE_NAME: Type.String({ minLength: 1, maxLength: 100, default: 'tasks-api', description: 'the `service.name` of the spans, when tracing is on' }),
  OIDC_ISSUER: Type.Optional(Type.String({ pattern: '^https?://', description: 'the issuer URL of an OpenID Connect provider to sign in with (its discovery document is read at the first sign-in, not at start): with OIDC_CLIENT_ID and OIDC_CLIENT_SECRET, turns single sign-on on. `http://` only outside production or for localhost and *.localhost. Register `<PUBLIC_URL>/v1/auth/oidc/callback` as the client\'s redirect URI' })),
  OIDC_CLIENT_ID: Type.Optional(Type.String({ minLength: 1, description: 'the client id this service has at the OpenID provider' })),
  OIDC_CLIENT_SECRET: Type.Optional(Type.String({ minLength: 1, description: 'the client secret this service has at the OpenID provider' })),
  OIDC_NAME: Type.String({ minLength: 1, maxLength: 64, default: 'single sign-on', description: 'the provider\'s name on the login page\'s button, "Sign in with <OIDC_NAME>"' }),
  OIDC_ALLOWED_REDIRECTS: Type.Optional(Type.String({ minLength: 1, description: 'comma-separated URLs where an API client\'s single sign-on may end (`redirect_uri` of `GET /v1/auth/oidc/authorize`), compared exactly; the /app pages need none' })),
  TOTP_ISSUER: Type.String({ minLength: 1, maxLength: 64, default: 'Tasks API', description: 'the name authenticator apps show beside the username of a two-factor enrolment' }),
})
export type Config = Static<typeof ConfigSchema>

export class ConfigError extends Error {
  constructor (readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    this.name = 'ConfigError'
  }
}

/** WEBHOOK_RETRY_SCHEDULE as seconds. */
export function retrySchedule (config: Pick<Config, 'WEBHOOK_RETRY_SCHEDULE'>): number[] {
  return config.WEBHOOK_RETRY_SCHEDULE.split(',').map(Number)
}

/** OIDC_ALLOWED_REDIRECTS as a list. */
export function allowedRedirects (config: Pick<Config, 'OIDC_ALLOWED_REDIRECTS'>): string[] {
  return (config.OIDC_ALLOWED_REDIRECTS ?? '').split(',').map((uri) => uri.trim()).filter((uri) => uri !== '')
}

/** The comma-separated earlier root secrets of SECRET_KEY_PREVIOUS. */
export function previousSecrets (list: string | undefined): string[] {
  return list === undefined ? [] : list.split(',').map((secret) => secret.trim()).filter((secret) => secret !== '')
}

/** Settings never repeated in an error message. */
const hidden = new Set(['SECRET_KEY', 'SECRET_KEY_PREVIOUS', 'JWT_SECRET', 'JWT_SIGNING_KEYS', 'ADMIN_PASSWORD', 'METRICS_TOKEN', 'SMTP_URL', 'OIDC_CLIENT_SECRET'])

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
    const shown = hidden.has(name) ? '(hidden)' : JSON.stringify(raw[name])
    return `${name}=${shown}: ${e.message}`
  })
  const config = converted as Config
  if (problems.length === 0) {
    if (config.NODE_ENV === 'production' && config.SECRET_KEY === undefined && config.JWT_SECRET === undefined) {
      problems.push('SECRET_KEY: required when NODE_ENV=production (at least 32 bytes), unless JWT_SECRET is set')
    }
    if (previousSecrets(config.SECRET_KEY_PREVIOUS).some((secret) => secret.length < 32)) {
      problems.push('SECRET_KEY_PREVIOUS=(hidden): each comma-separated secret must be at least 32 bytes')
    }
    if ((config.ADMIN_USERNAME === undefined) !== (config.ADMIN_PASSWORD === undefined)) {
      problems.push('ADMIN_USERNAME and ADMIN_PASSWORD: set both or neither')
    }
    if (config.JWT_SIGNING_KEYS !== undefined) {
      try {
        parseSigningKeys(config.JWT_SIGNING_KEYS)
      } catch (err) {
        problems.push(`JWT_SIGNING_KEYS=(hidden): ${(err as Error).message}`)
      }
    }
    if ((config.TLS_CERT === undefined) !== (config.TLS_KEY === undefined)) {
      problems.push('TLS_CERT and TLS_KEY: set both or neither')
    }
    if (config.TLS_CLIENT_CA !== undefined && config.TLS_CERT === undefined) {
      problems.push('TLS_CLIENT_CA: needs TLS_CERT and TLS_KEY (the server asks for client certificates only on its own TLS)')
    }
    if (config.METRICS_PORT !== undefined && config.METRICS_PORT === config.PORT) {
      problems.push('METRICS_PORT: must differ from PORT')
    }
    const oidcSettings = [config.OIDC_ISSUER, config.OIDC_CLIENT_ID, config.OIDC_CLIENT_SECRET]
    if (oidcSettings.some((value) => value !== undefined) && oidcSettings.some((value) => value === undefined)) {
      problems.push('OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET: set all three or none')
    }
    // Plain http only to a provider on this machine's own names (the local stack's Dex).
    if (config.NODE_ENV === 'production' && config.OIDC_ISSUER?.startsWith('http://') === true && !/^(localhost|.+\.localhost|127\.0\.0\.1|\[::1\])$/.test(new URL(config.OIDC_ISSUER).hostname)) {
      problems.push('OIDC_ISSUER: must be https:// when NODE_ENV=production (http:// only for localhost and *.localhost)')
    }
    if (config.ADMIN_PASSWORD !== undefined && config.ADMIN_PASSWORD.toLowerCase() === config.ADMIN_USERNAME?.toLowerCase()) {
      problems.push('ADMIN_PASSWORD: must not equal ADMIN_USERNAME')
    }
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return config
}
