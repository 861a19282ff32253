import { randomBytes } from 'node:crypto'
import tap from 'tap'
import { serverDatabaseEnv, TEST_DATABASE_URL } from '../helper.js'
import { productionBundle, startServer } from '../server-process.js'

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const skip = TEST_DATABASE_URL === undefined ? 'several instances need a shared PostgreSQL (TEST_DATABASE_URL)' : false

const json = { 'content-type': 'application/json' }
async function post (url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return await fetch(url, { method: 'POST', headers: { ...json, ...headers }, body: JSON.stringify(body) })
}

// The instances run the production bundle, as the compose stack's containers do.
tap.test('two instances on one PostgreSQL and one Redis behave as one service', { skip }, async (t) => {
  // A namespace of this run's own, so counters never mix with another run's.
  const shared = {
    ...await serverDatabaseEnv(t),
    JWT_SECRET: randomBytes(32).toString('hex'),
    REDIS_URL,
    REDIS_KEY_PREFIX: `tasks-api-test:${randomBytes(6).toString('hex')}:`,
    RATE_LIMIT_MAX: '1000',
    AUTH_RATE_LIMIT_MAX: '6',
    LOG_LEVEL: 'warn',
  }
  const bundle = await productionBundle(t)
  const a = await startServer(shared, bundle)
  const b = await startServer({ ...shared, MIGRATE_ON_START: 'false' }, bundle)
  t.teardown(async () => { await a.stop(); await b.stop() })

  const credentials = { username: 'topology_user', password: 'topology password' }
  t.equal((await post(`${a.url}/v1/auth/signup`, credentials)).status, 201)
  const login = await (await post(`${a.url}/v1/auth/login`, credentials)).json() as { access_token: string, refresh_token: string }

  await t.test('a token issued by A works on B', async (t) => {
    const me = await fetch(`${b.url}/v1/users/me`, { headers: { authorization: `Bearer ${login.access_token}` } })
    t.equal(me.status, 200)
  })

  await t.test('a refresh token rotated on A and reused on B revokes the family', async (t) => {
    const rotated = await post(`${a.url}/v1/auth/refresh`, { refresh_token: login.refresh_token })
    t.equal(rotated.status, 200)
    const successor = (await rotated.json() as { refresh_token: string }).refresh_token
    const reuse = await post(`${b.url}/v1/auth/refresh`, { refresh_token: login.refresh_token })
    t.equal(reuse.status, 401, 'the rotated token is refused on B')
    const afterReuse = await post(`${a.url}/v1/auth/refresh`, { refresh_token: successor })
    t.equal(afterReuse.status, 401, 'its successor is revoked with the family, on A too')
  })

  await t.test('an idempotent POST sent to A and replayed to B returns the same task', async (t) => {
    const headers = { authorization: `Bearer ${login.access_token}`, 'idempotency-key': `topology-${randomBytes(4).toString('hex')}` }
    const first = await post(`${a.url}/v1/tasks`, { title: 'only once' }, headers)
    t.equal(first.status, 201)
    const replay = await post(`${b.url}/v1/tasks`, { title: 'only once' }, headers)
    t.equal(replay.status, 201)
    t.same(await replay.json(), await first.json(), 'same body')
    t.equal(replay.headers.get('location'), first.headers.get('location'))
    t.equal(replay.headers.get('etag'), first.headers.get('etag'))
  })

  await t.test('a rate limit counts requests across both instances', async (t) => {
    // Signup allows AUTH_RATE_LIMIT_MAX (6) per client address and window, counted in Redis.
    const statuses: number[] = []
    for (let i = 0; i < 8; i++) {
      const target = i % 2 === 0 ? a : b
      const res = await post(`${target.url}/v1/auth/signup`, { username: `topology_${i}_${randomBytes(2).toString('hex')}`, password: 'topology password' })
      statuses.push(res.status)
      if (res.status === 429) {
        t.ok(res.headers.get('retry-after'), 'Retry-After on 429')
        t.match(res.headers.get('content-type'), /application\/problem\+json/)
      }
    }
    // One signup above already counted against the same address.
    t.same(statuses.filter((s) => s === 201).length, 5, `5 more signups allowed in all, alternating A and B: ${statuses.join(' ')}`)
    t.same(statuses.slice(-3), [429, 429, 429], 'then refused on either instance')
  })
})
