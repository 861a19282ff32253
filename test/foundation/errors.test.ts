import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import tap from 'tap'
import { errorCodes, statusOf, titleOf } from '../../src/errors.js'
import { projectRoot } from '../../src/lib/project-root.js'
import { classifyError } from '../../src/plugins/app/error-classification.js'
import { buildApp } from '../../src/app.js'
import { createKeyring } from '../../src/lib/keys.js'
import { openPglite, openPostgres } from '../../src/db/client.js'
import { assertProblem, build, createUser, embeddedDataDir, injectAs, JWT_SECRET, serverDatabaseEnv, TEST_DATABASE_URL, testConfig } from '../helper.js'

const signup = (payload: string, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
  ({ method: 'POST' as const, url: '/v1/auth/signup', payload, headers })

tap.test('schema violations are 400 with JSON-pointer paths for every problem', async (t) => {
  const app = await build(t)
  const res = await app.inject(signup(JSON.stringify({ username: 'x', password: 'short' })))
  const body = assertProblem(t, res, 400, 'VALIDATION_FAILED')
  t.equal(body.instance, '/v1/auth/signup')
  t.match(body.errors, [
    { in: 'body', path: '/username', message: /fewer than 3/ },
    { in: 'body', path: '/password', message: /fewer than 8/ },
  ])
  t.match(body.detail, /body\/username/)
})

tap.test('a missing required field is reported at its own path', async (t) => {
  const app = await build(t)
  const res = await app.inject(signup(JSON.stringify({ username: 'someone' })))
  const body = assertProblem(t, res, 400, 'VALIDATION_FAILED')
  t.match(body.errors, [{ in: 'body', path: '/password', message: 'is required' }])
})

tap.test('unknown body fields are rejected, not dropped', async (t) => {
  const app = await build(t)
  const res = await app.inject(signup(JSON.stringify({ username: 'someone', password: 'long enough pw', admin: true })))
  const body = assertProblem(t, res, 400, 'VALIDATION_FAILED')
  t.match(body.errors, [{ in: 'body', path: '/admin', message: 'is not a known field' }])
})

tap.test('body values are not coerced: a number is not a string', async (t) => {
  const app = await build(t)
  const res = await app.inject(signup(JSON.stringify({ username: 12345, password: 'long enough pw' })))
  const body = assertProblem(t, res, 400, 'VALIDATION_FAILED')
  t.match(body.errors, [{ in: 'body', path: '/username', message: /must be string/ }])
})

tap.test('malformed JSON is 400 MALFORMED_JSON', async (t) => {
  const app = await build(t)
  assertProblem(t, await app.inject(signup('{"username": "a",')), 400, 'MALFORMED_JSON')
  assertProblem(t, await app.inject(signup('')), 400, 'MALFORMED_JSON')
})

tap.test('prototype poisoning is refused as malformed JSON', async (t) => {
  const app = await build(t)
  const res = await app.inject(signup('{"username":"someone","password":"long enough pw","__proto__":{"admin":true}}'))
  assertProblem(t, res, 400, 'MALFORMED_JSON')
})

tap.test('NUL characters in strings are a 400 naming the field, not a database error', async (t) => {
  const app = await build(t)
  const res = await app.inject(signup('{"username":"some\\u0000one","password":"long enough pw"}'))
  t.match(assertProblem(t, res, 400, 'VALIDATION_FAILED').errors, [{ in: 'body', path: '/username', message: /NUL/ }])
  const user = await createUser(app)
  const tags = await injectAs(app, user, { method: 'POST', url: '/v1/tasks', headers: { 'content-type': 'application/json' }, payload: '{"title":"t","tags":["ok","b\\u0000d"]}' })
  t.match(assertProblem(t, tags, 400, 'VALIDATION_FAILED').errors, [{ in: 'body', path: '/tags/1' }])
  const query = await app.inject({ method: 'GET', url: '/health/live?x=%00' })
  t.match(assertProblem(t, query, 400, 'VALIDATION_FAILED').errors, [{ in: 'query', path: '/x' }])
})

tap.test('a schema violation of the whole body points at it with the empty JSON pointer', async (t) => {
  const app = await build(t)
  const body = assertProblem(t, await app.inject(signup('[]')), 400, 'VALIDATION_FAILED')
  t.match(body.errors, [{ in: 'body', path: '', message: /object/ }])
})

tap.test('a UUID in any other form than the bare one is a 400, never a database error', async (t) => {
  const app = await build(t)
  const user = await createUser(app)
  const urn = 'urn:uuid:7569b1db-3d49-4f24-9451-1b9f45818f13'
  for (const request of [
    { method: 'GET' as const, url: `/v1/tasks/${urn}` },
    { method: 'GET' as const, url: `/v1/projects/${urn}/members` },
    { method: 'GET' as const, url: `/v1/tasks?project_id=${urn}` },
    { method: 'POST' as const, url: '/v1/tasks', payload: { title: 't', project_id: urn } },
    { method: 'POST' as const, url: '/v1/tasks', payload: { title: 't', assignee_id: urn } },
  ]) {
    assertProblem(t, await injectAs(app, user, request), 400, 'VALIDATION_FAILED')
  }
})

tap.test('a path with a trailing slash is no resource: 404, as for every unknown path', async (t) => {
  const app = await build(t)
  const user = await createUser(app)
  for (const [method, url] of [['GET', '/v1/tasks/'], ['PATCH', '/v1/tasks/'], ['DELETE', '/v1/tasks/'], ['GET', '/v1/projects/'], ['POST', '/v1/tasks/']] as const) {
    const body = assertProblem(t, await injectAs(app, user, { method, url }), 404, 'NOT_FOUND')
    t.equal(body.instance, url)
  }
})

tap.test('a query string that is not valid percent-encoding is 400, as in the path', async (t) => {
  const app = await build(t)
  const user = await createUser(app)
  for (const query of ['q=%zz', 'q=%E0%A4%A', 'q=abc%', 'q=%C3%28']) {
    assertProblem(t, await injectAs(app, user, { method: 'GET', url: `/v1/tasks?${query}` }), 400, 'BAD_REQUEST')
  }
  const euro = await injectAs(app, user, { method: 'GET', url: '/v1/tasks?q=%E2%82%AC+sign' })
  t.equal(euro.statusCode, 200, 'valid encoding is read as before')
})

tap.test('an operation that reads no body: nothing, or an empty JSON object, is fine; fields are refused', async (t) => {
  const app = await build(t)
  const user = await createUser(app)
  const json = { 'content-type': 'application/json' }
  const create = async () => (await injectAs(app, user, { method: 'POST', url: '/v1/tasks', payload: { title: 'to delete' } })).json<{ id: string }>().id
  const labelled = await injectAs(app, user, { method: 'DELETE', url: `/v1/tasks/${await create()}`, headers: json, payload: '' })
  t.equal(labelled.statusCode, 204, 'an empty body labelled JSON is no body')
  t.equal((await injectAs(app, user, { method: 'DELETE', url: `/v1/tasks/${await create()}`, headers: json, payload: '{}' })).statusCode, 204)
  const id = await create()
  const fields = await injectAs(app, user, { method: 'DELETE', url: `/v1/tasks/${id}`, headers: json, payload: '{"x":1}' })
  t.match(assertProblem(t, fields, 400, 'VALIDATION_FAILED').errors, [{ in: 'body', path: '' }])
  t.equal((await injectAs(app, user, { method: 'GET', url: `/v1/tasks/${id}` })).statusCode, 200, 'and nothing was deleted')
  assertProblem(t, await app.inject(signup('')), 400, 'MALFORMED_JSON')
})

tap.test('a body that is not JSON is 415', async (t) => {
  const app = await build(t)
  const res = await app.inject(signup('username=a', { 'content-type': 'text/plain' }))
  assertProblem(t, res, 415, 'UNSUPPORTED_MEDIA_TYPE')
  const patchType = await app.inject(signup('{}', { 'content-type': 'application/merge-patch+json' }))
  assertProblem(t, patchType, 415, 'UNSUPPORTED_MEDIA_TYPE')
})

tap.test('a body over BODY_LIMIT is 413', async (t) => {
  const app = await build(t, { BODY_LIMIT: '2048' })
  const res = await app.inject(signup(JSON.stringify({ username: 'someone', password: 'x'.repeat(4096) })))
  assertProblem(t, res, 413, 'PAYLOAD_TOO_LARGE')
})

tap.test('an unknown route is 404 problem+json', async (t) => {
  const app = await build(t)
  const body = assertProblem(t, await app.inject({ method: 'GET', url: '/v1/nothing-here?x=1' }), 404, 'NOT_FOUND')
  t.equal(body.instance, '/v1/nothing-here')
})

tap.test('a path that exists under other methods is 405 with Allow, not 404', async (t) => {
  const app = await build(t)
  const user = await createUser(app)
  const collection = await injectAs(app, user, { method: 'DELETE', url: '/v1/tasks' })
  assertProblem(t, collection, 405, 'METHOD_NOT_ALLOWED')
  t.equal(collection.headers.allow, 'GET, HEAD, POST')
  const item = await injectAs(app, user, { method: 'POST', url: '/v1/tasks/7569b1db-3d49-4f24-9451-1b9f45818f13' })
  t.equal(assertProblem(t, item, 405, 'METHOD_NOT_ALLOWED').detail, 'POST is not allowed here: use GET, HEAD, PUT, PATCH, DELETE.')
  const health = await app.inject({ method: 'DELETE', url: '/health/live' })
  assertProblem(t, health, 405, 'METHOD_NOT_ALLOWED')
  t.equal(health.headers.allow, 'GET, HEAD')
  assertProblem(t, await injectAs(app, user, { method: 'POST', url: '/v1/tasks/' }), 404, 'NOT_FOUND')
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/nothing/here' }), 404, 'NOT_FOUND')
})

tap.test('a request id is echoed when sane and replaced when not', async (t) => {
  const app = await build(t)
  const echoed = await app.inject({ method: 'GET', url: '/v1/missing', headers: { 'x-request-id': 'trace-abc.123' } })
  t.equal(echoed.headers['x-request-id'], 'trace-abc.123')
  t.equal(echoed.json().request_id, 'trace-abc.123')
  const replaced = await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': 'bad id <script>' } })
  t.match(replaced.headers['x-request-id'], /^[0-9a-f-]{36}$/)
})

tap.test('an unexpected exception is a generic 500 with the request id; details stay in the log', async (t) => {
  const lines: string[] = []
  const app = await buildApp({
    config: testConfig({ WEBHOOK_DELIVERY: 'false' }), // no poll of the absent database to wait out at close
    database: await openPostgres({ url: 'postgres://nobody@127.0.0.1:1/none', poolMax: 1, statementTimeoutMs: 0 }),
    keys: createKeyring({ JWT_SECRET }),
    logger: { level: 'error', stream: { write: (line: string) => { lines.push(line) } } },
  })
  app.get('/boom', async () => { throw new Error('secret internal detail at /srv/app.ts:42') })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'GET', url: '/boom' })
  const body = assertProblem(t, res, 500, 'INTERNAL')
  t.notMatch(res.body, /secret internal detail|\/srv\/app/)
  t.ok(lines.some((l) => l.includes('secret internal detail') && l.includes(String(body.request_id))), 'logged with the request id')
})

tap.test('an unreachable PostgreSQL is 503 with Retry-After', async (t) => {
  const app = await buildApp({
    config: testConfig({ WEBHOOK_DELIVERY: 'false' }), // no poll of the absent database to wait out at close
    database: await openPostgres({ url: 'postgres://nobody@127.0.0.1:1/none', poolMax: 1, statementTimeoutMs: 0 }),
    keys: createKeyring({ JWT_SECRET }),
  })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: 'someone', password: 'whatever1' } })
  assertProblem(t, res, 503, 'SERVICE_UNAVAILABLE')
  t.equal(res.headers['retry-after'], '5')
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  assertProblem(t, ready, 503, 'SERVICE_UNAVAILABLE')
})

tap.test('a database that refuses connections is 503 with Retry-After', { skip: TEST_DATABASE_URL === undefined && 'a PostgreSQL server refuses connections to one database: run with TEST_DATABASE_URL' }, async (t) => {
  const { DATABASE_URL: url } = await serverDatabaseEnv(t)
  const { default: postgres } = await import('postgres')
  const admin = postgres(TEST_DATABASE_URL!, { max: 1, onnotice: () => {} })
  t.teardown(() => admin.end({ timeout: 5 }))
  await admin.unsafe(`alter database "${new URL(url!).pathname.slice(1)}" allow_connections false`)
  t.teardown(() => admin.unsafe(`alter database "${new URL(url!).pathname.slice(1)}" allow_connections true`))
  const app = await buildApp({
    config: testConfig({ WEBHOOK_DELIVERY: 'false' }),
    database: await openPostgres({ url: url!, poolMax: 1, statementTimeoutMs: 0 }),
    keys: createKeyring({ JWT_SECRET }),
  })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: 'someone', password: 'whatever1' } })
  assertProblem(t, res, 503, 'SERVICE_UNAVAILABLE')
  t.equal(res.headers['retry-after'], '5')
})

tap.test('a closed embedded database is 503 with Retry-After', async (t) => {
  const database = await openPglite(await embeddedDataDir(t))
  await database.close()
  const app = await buildApp({ config: testConfig(), database, keys: createKeyring({ JWT_SECRET }) })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: 'someone', password: 'whatever1' } })
  assertProblem(t, res, 503, 'SERVICE_UNAVAILABLE')
})

/** Headers helmet sets for documents only; JSON responses go without them. */
const documentOnlyHeaders = ['referrer-policy', 'x-dns-prefetch-control', 'x-download-options', 'x-permitted-cross-domain-policies', 'x-xss-protection', 'origin-agent-cluster', 'cross-origin-opener-policy']

tap.test('API responses carry the OWASP REST security headers and are not cacheable', async (t) => {
  const app = await build(t)
  for (const url of ['/v1/users/me', '/v1/no-such-thing', '/health/live', '/openapi.json']) {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'", url)
    t.equal(res.headers['x-frame-options'], 'DENY', url)
    t.equal(res.headers['x-content-type-options'], 'nosniff', url)
    t.equal(res.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains', url)
    t.equal(res.headers['cross-origin-resource-policy'], 'same-origin', url)
    for (const name of documentOnlyHeaders) t.notOk(res.headers[name], `${url} has no ${name}`)
  }
  const res = await app.inject({ method: 'GET', url: '/v1/users/me' })
  t.equal(res.headers['cache-control'], 'no-store')
  t.notOk(res.headers['access-control-allow-origin'], 'CORS is off by default')
})

tap.test('the explorer is served as a document, under the CSP it runs with', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'GET', url: '/docs' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /text\/html/)
  t.match(res.headers['content-security-policy'], /default-src 'self';script-src 'self'/)
  t.equal(res.headers['x-frame-options'], 'SAMEORIGIN')
  for (const name of documentOnlyHeaders) t.ok(res.headers[name], `has ${name}`)
})

tap.test('CORS answers only the configured origins', async (t) => {
  const app = await build(t, { CORS_ORIGINS: 'https://app.example.com' })
  const allowed = await app.inject({ method: 'OPTIONS', url: '/v1/users/me', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'GET' } })
  t.equal(allowed.headers['access-control-allow-origin'], 'https://app.example.com')
  const other = await app.inject({ method: 'GET', url: '/health/live', headers: { origin: 'https://evil.example.com' } })
  t.notOk(other.headers['access-control-allow-origin'])
})

tap.test('a deadlock or serialization failure, wrapped as drivers wrap it, is a retryable 409 WRITE_CONFLICT', async (t) => {
  for (const code of ['40P01', '40001']) {
    const wrapped = Object.assign(new Error('Failed query: update …'), { cause: Object.assign(new Error('deadlock detected'), { code }) })
    t.same(classifyError(wrapped as never), { code: 'WRITE_CONFLICT', extras: { detail: 'Another request changed the same data at the same time; retry.', headers: { 'retry-after': '1' } } }, code)
  }
  t.equal(classifyError(Object.assign(new Error('x'), { code: '23503' }) as never).code, 'INTERNAL', 'another database error stays a 500')
})

tap.test('the API guide lists every code of the catalogue with its status and title', async (t) => {
  const guide = await readFile(join(projectRoot, 'docs', 'api-guide.md'), 'utf8')
  for (const code of errorCodes) {
    t.ok(guide.includes(`| \`${code}\` | ${statusOf(code)} | ${titleOf(code)} |`), code)
  }
})
