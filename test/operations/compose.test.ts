import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import tap from 'tap'
import { parse } from 'yaml'
import { loadConfig } from '../../src/config.js'
import { projectRoot } from '../../src/lib/project-root.js'
import { startFlags } from '../../scripts/start-flags.js'

interface Service {
  build?: unknown
  image?: string
  command?: string[]
  environment?: Record<string, string>
  depends_on?: Record<string, { condition: string }>
  healthcheck?: { test: string[] }
  volumes?: string[]
  ports?: string[]
  expose?: string[]
}

const read = (file: string) => readFile(join(projectRoot, file), 'utf8')

/** Compose's `${VAR:-default}` and `${VAR:?message}`, resolved against `env`. */
function interpolate (value: string, env: Record<string, string>): string {
  return value.replace(/\$\{(\w+)(?::([-?])([^}]*))?\}/g, (_m, name: string, kind?: string, rest?: string) => {
    if (env[name] !== undefined && env[name] !== '') return env[name]
    if (kind === '?') throw new Error(`${name} is required: ${rest}`)
    return rest ?? ''
  })
}

tap.test('docker-compose.yml: the stack is complete and its API environment passes the config schema', async (t) => {
  const compose = parse(await read('docker-compose.yml')) as { services: Record<string, Service>, volumes: Record<string, unknown> }
  const { db, redis, migrate, api, proxy } = compose.services
  t.ok(db && redis && migrate && api && proxy, 'db, redis, migrate, api and proxy services')
  t.match(db!.healthcheck!.test.join(' '), /pg_isready/, 'the database has a pg_isready health check')
  t.ok(redis!.healthcheck, 'redis has a health check')
  t.match(api!.healthcheck!.test.join(' '), /\/health\/ready/, 'the API health check is readiness')
  t.ok('pgdata' in compose.volumes, 'PostgreSQL data lives in a named volume')
  t.match(db!.volumes, ['pgdata:/var/lib/postgresql/data'])
  t.same(api!.depends_on, {
    db: { condition: 'service_healthy' },
    redis: { condition: 'service_healthy' },
    migrate: { condition: 'service_completed_successfully' },
  }, 'the API waits for a healthy database and Redis and for the migration')
  t.same(migrate!.depends_on, { db: { condition: 'service_healthy' } })
  t.same(migrate!.command, ['node', 'dist/scripts/migrate.js'])
  t.equal(api!.environment!.MIGRATE_ON_START, 'false', 'instances do not race to migrate')
  t.ok(proxy!.depends_on?.api, 'the proxy waits for the API')

  const env = { SECRET_KEY: 'a-secret-that-is-at-least-32-bytes-long' }
  const apiEnv = Object.fromEntries(Object.entries(api!.environment!).map(([k, v]) => [k, interpolate(String(v), env)]))
  const config = loadConfig(apiEnv)
  t.equal(config.NODE_ENV, 'production')
  t.match(config.DATABASE_URL, /@db:5432\//)
  t.match(config.REDIS_URL, /^redis:\/\/redis:6379/)
  t.equal(config.TRUST_PROXY, true, 'behind the proxy, client addresses come from X-Forwarded-For')
  t.equal(config.METRICS_PORT, 9464, 'metrics on a listener of their own')
  t.equal(config.METRICS_HOST, '0.0.0.0', 'reachable by Prometheus on the stack network')
  const prometheus = compose.services.prometheus
  t.ok(prometheus?.volumes?.includes('./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro'), 'Prometheus is in the stack with its config')
  const scrape = parse(await read('deploy/prometheus.yml')) as { scrape_configs: Array<{ dns_sd_configs: Array<{ names: string[], port: number }> }> }
  t.match(scrape.scrape_configs[0]!.dns_sd_configs[0], { names: ['api'], port: config.METRICS_PORT }, 'it scrapes every api replica on METRICS_PORT')
  const mailpit = compose.services.mailpit
  t.match(mailpit?.image, /^axllent\/mailpit:/, 'Mailpit is in the stack')
  t.same(mailpit?.ports, ['127.0.0.1:8025:8025'], 'its inbox, which shows reset links, on the host\'s loopback only')
  t.equal(config.SMTP_URL, 'smtp://mailpit:1025', 'the API sends its mail there')
  const proxyPort = proxy!.ports![0]!.split(':').at(-2)
  t.equal(config.PUBLIC_URL, `http://localhost:${proxyPort!}`, 'links in mail point at the proxy\'s published port')
  t.throws(() => interpolate(api!.environment!.SECRET_KEY!, {}), /SECRET_KEY is required/, 'SECRET_KEY has no default')
  t.equal(config.JWT_SECRET, undefined, 'access tokens are signed with a key derived from SECRET_KEY unless JWT_SECRET is given')
  const dex = compose.services.dex as Service & { networks?: { default?: { aliases?: string[] } } }
  t.match(dex?.image, /^ghcr\.io\/dexidp\/dex:v/, 'Dex is in the stack')
  t.ok(dex?.volumes?.includes('./deploy/dex.yaml:/etc/dex/config.yaml:ro'), 'with its config')
  t.same(dex?.ports, ['127.0.0.1:5556:5556'], 'on the host\'s loopback only')
  const dexConfig = parse(await read('deploy/dex.yaml')) as { issuer: string, staticClients: Array<{ id: string, secret: string, redirectURIs: string[] }>, staticPasswords: Array<{ email: string }> }
  const issuer = new URL(dexConfig.issuer)
  t.equal(config.OIDC_ISSUER, dexConfig.issuer, 'the API signs in with the stack\'s Dex')
  t.ok(dex?.networks?.default?.aliases?.includes(issuer.hostname), 'which the API reaches by the issuer\'s name, as the browser does')
  t.match(issuer.hostname, /\.localhost$/, 'a name browsers resolve to the loopback interface')
  t.equal(issuer.port, dex!.ports![0]!.split(':').at(-1), 'on the port Dex listens on and publishes')
  t.match(dexConfig.staticClients, [{ id: config.OIDC_CLIENT_ID, secret: config.OIDC_CLIENT_SECRET, redirectURIs: [`${config.PUBLIC_URL!}/v1/auth/oidc/callback`] }], 'its client is the API\'s, calling back through the proxy')
  t.match(dexConfig.staticPasswords, [{ email: 'demo@example.com' }], 'a demo user')
  const jaeger = compose.services.jaeger
  t.match(jaeger?.image, /^jaegertracing\/all-in-one:/, 'Jaeger is in the stack')
  t.same(jaeger?.ports, ['127.0.0.1:16686:16686'], 'its UI on the host\'s loopback only')
  t.equal(config.OTEL_EXPORTER_OTLP_ENDPOINT, `http://jaeger:${jaeger!.expose![0]!}`, 'the API sends its traces there, over OTLP/HTTP')
  const migrateEnv = Object.fromEntries(Object.entries(migrate!.environment!).map(([k, v]) => [k, interpolate(String(v), env)]))
  t.ok(loadConfig(migrateEnv), 'the migrate service config is valid too')
})

tap.test('Dockerfile: multi-stage, production dependencies only, non-root, health check on readiness', async (t) => {
  const dockerfile = await read('Dockerfile')
  t.ok((dockerfile.match(/^FROM /gm) ?? []).length >= 2, 'multi-stage')
  t.match(dockerfile, /npm ci --omit=dev/)
  for (const stage of dockerfile.split(/^FROM /m).slice(1)) {
    if (!stage.includes('npm ci')) continue
    const copied = stage.indexOf('COPY patches ./patches')
    t.ok(copied !== -1 && copied < stage.indexOf('npm ci'), 'the dependency patches are there before npm ci applies them')
  }
  t.match(dockerfile, /^USER node$/m)
  t.match(dockerfile, /^HEALTHCHECK .*\n?.*\/health\/ready/m)
  t.match(dockerfile, /COPY drizzle \.\/drizzle/, 'migrations ship in the image')
  t.match(dockerfile, /COPY templates \.\/templates/, 'page templates ship in the image')
  t.match(dockerfile, /COPY public \.\/public/, 'the stylesheet ships in the image')
  const flags = await startFlags()
  t.ok(flags.length > 0 && dockerfile.includes(`CMD ["node", ${flags.map((flag) => `"${flag}"`).join(', ')}, "dist/server.mjs"]`), 'the container runs the bundled server with the V8 flags `npm start` uses')
  const caddyfile = await read('deploy/Caddyfile')
  t.match(caddyfile, /dynamic a api 3000/, 'the proxy follows every api replica')
  t.match(caddyfile, /header_up -X-Client-Cert-Sha256/, 'a client\'s own certificate header never reaches the API, which trusts it from the proxy')
  const mtls = await read('deploy/mtls/client-auth.caddy.example')
  t.match(mtls, /header_up X-Client-Cert-Sha256 \{http\.request\.tls\.client\.fingerprint\}/, 'the mutual-TLS site forwards the verified certificate\'s SHA-256')
  t.match(mtls, /mode verify_if_given/, 'clients without a certificate still reach tokens and unbound keys')
})

tap.test('Node.js lines: the container and CI run one LTS major, which package.json supports, as it does the one running this test', async (t) => {
  const dockerfile = await read('Dockerfile')
  const images = [...dockerfile.matchAll(/^FROM node:(\d+)-/gm)].map((m) => Number(m[1]))
  t.ok(images.length >= 2 && images.every((major) => major === images[0]), `every stage on one Node major (${images.join(', ')})`)
  const ciMajor = Number(/^NODE_LTS=(\d+)$/m.exec(await read('.ci/run'))?.[1])
  t.equal(ciMajor, images[0], '.ci/run tests the container\'s Node major')
  const { engines } = JSON.parse(await read('package.json')) as { engines: { node: string } }
  const supported = engines.node.split('||').map((range) => Number(/\^(\d+)/.exec(range)?.[1]))
  t.ok(supported.includes(images[0]!), `engines (${engines.node}) includes the container's major`)
  t.ok(supported.includes(Number(process.versions.node.split('.')[0])), `and this one, ${process.version}`)
})
