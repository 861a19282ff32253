/**
 * Traces against a real OTLP/HTTP collector (a listening server in this test that decodes what the
 * exporter sends): a task create that fires a webhook is one trace, from the caller's `traceparent`
 * through the request, its statements and the delivery attempt to the receiver's `traceparent`;
 * log lines name the span; statements' values are never exported; mail and the OpenID provider's
 * calls have spans of their own.
 */
import { randomBytes } from 'node:crypto'
import tap from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { createKeyring } from '../../src/lib/keys.js'
import { loggerOptions } from '../../src/logger.js'
import { startTracing } from '../../src/tracing.js'
import { createUser, injectAs, type T, testConfig, testDatabase } from '../helper.js'
import { startMailServer } from '../mail-server.js'
import { startProvider, signInAtProvider } from '../oidc-provider.js'
import { type CollectedSpan, startCollector } from '../otlp-collector.js'
import { startReceiver } from '../webhooks/receiver.js'

// Spans leave in batches every 50 ms rather than every 5 s, so the test waits little for them.
process.env.OTEL_BSP_SCHEDULE_DELAY = '50'
const collector = await startCollector()
const tracing = (await startTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_SERVICE_NAME: 'tasks-api-under-test' }))!
tap.teardown(async () => {
  await tracing.shutdown()
  await collector.close()
})

/** The app with tracing on and its log lines kept. */
async function traced (t: T, overrides: Record<string, string> = {}): Promise<{ app: FastifyInstance, logs: () => Array<Record<string, unknown>> }> {
  const lines: string[] = []
  const config = testConfig({
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, LOG_LEVEL: 'info', AUTH_RATE_LIMIT_MAX: '1000', WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true', ...overrides,
  })
  const app = await buildApp({
    config, database: await testDatabase(), keys: createKeyring(config), keepDatabaseOpen: true, logger: loggerOptions(config, { write: (line: string) => { lines.push(line) } }),
  })
  t.teardown(() => app.close())
  await app.ready()
  return { app, logs: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) }
}

/** A new trace as a caller would start it: its id, the caller's span id, and the header. */
function callerTrace (): { traceId: string, callerSpanId: string, traceparent: string } {
  const traceId = randomBytes(16).toString('hex')
  const callerSpanId = randomBytes(8).toString('hex')
  return { traceId, callerSpanId, traceparent: `00-${traceId}-${callerSpanId}-01` }
}

/** Whether `span` is `ancestor` or below it. */
function descends (spans: CollectedSpan[], span: CollectedSpan, ancestor: CollectedSpan): boolean {
  for (let at: CollectedSpan | undefined = span; at !== undefined; at = spans.find((s) => s.spanId === at!.parentSpanId)) {
    if (at.spanId === ancestor.spanId) return true
  }
  return false
}

const named = (spans: CollectedSpan[], name: string) => spans.find((s) => s.name === name)

tap.test('a task create that fires a webhook is one trace, from the caller to the receiver', async (t) => {
  const { app, logs } = await traced(t)
  const receiver = await startReceiver()
  t.teardown(receiver.close)
  const user = await createUser(app, 'traced')
  const hook = await injectAs(app, user, { method: 'POST', url: '/v1/webhooks', payload: { url: receiver.url, events: ['task.created'] } })
  t.equal(hook.statusCode, 201)

  const { traceId, callerSpanId, traceparent } = callerTrace()
  const title = `private title ${randomBytes(6).toString('hex')}`
  const created = await injectAs(app, user, { method: 'POST', url: '/v1/tasks', headers: { traceparent }, payload: { title, tags: ['traced'] } })
  t.equal(created.statusCode, 201)

  const [delivery] = await receiver.waitFor(1)
  const sent = new RegExp(`^00-${traceId}-([0-9a-f]{16})-01$`).exec(String(delivery!.headers.traceparent))
  t.ok(sent, `the delivery carries the trace: ${String(delivery!.headers.traceparent)}`)

  const spans = await collector.waitFor(traceId, (s) => ['webhook attempt', 'POST /v1/tasks', 'INSERT tasks'].every((name) => named(s, name) !== undefined))
  const request = named(spans, 'POST /v1/tasks')!
  t.equal(request.parentSpanId, callerSpanId, 'the request span continues the caller\'s')
  t.equal(request.kind, 2, 'a server span')
  t.match(request.attributes, { 'http.route': '/v1/tasks', 'http.request.method': 'POST', 'http.response.status_code': 201 })
  t.equal(request.service, 'tasks-api-under-test')
  for (const span of spans) t.ok(descends(spans, span, request), `${span.name} is under the request`)

  const insert = named(spans, 'INSERT tasks')
  t.ok(insert, `the create statement has a span (spans: ${spans.map((s) => s.name).join(', ')})`)
  t.match(insert?.attributes, { 'db.system.name': 'postgresql', 'db.operation.name': 'INSERT', 'db.collection.name': 'tasks' })
  t.equal(insert?.kind, 3, 'a client span')

  const attempt = named(spans, 'webhook attempt')!
  t.match(attempt.attributes, { 'webhook.event_type': 'task.created', 'webhook.attempt': 1, 'http.response.status_code': 200, 'webhook.outcome': 'succeeded' })
  t.equal(attempt.kind, 3)
  t.equal(sent?.[1], attempt.spanId, 'the receiver is told the attempt\'s span as its parent')

  t.notOk(collector.bodies.some((body) => body.includes(title)), 'a statement\'s values are never exported')

  const line = logs().find((l) => l.msg === 'request completed' && l.route === '/v1/tasks' && l.method === 'POST')
  t.match(line, { trace_id: traceId, span_id: request.spanId }, 'the access line names the request\'s span')
})

tap.test('a request without a caller\'s trace starts one; probes make none; a failed statement is marked', async (t) => {
  const { app, logs } = await traced(t)
  const user = await createUser(app, 'untraced')
  t.equal((await injectAs(app, user, { method: 'GET', url: '/v1/tasks?limit=5' })).statusCode, 200)
  const line = logs().find((l) => l.msg === 'request completed' && l.route === '/v1/tasks')
  t.match(line, { trace_id: /^[0-9a-f]{32}$/, span_id: /^[0-9a-f]{16}$/ })
  const spans = await collector.waitFor(String(line?.trace_id), (s) => named(s, 'GET /v1/tasks') !== undefined && s.some((x) => x.attributes['db.system.name'] !== undefined))
  t.equal(named(spans, 'GET /v1/tasks')!.parentSpanId, '', 'a root span')

  const { traceId, traceparent } = callerTrace()
  t.equal((await app.inject({ method: 'GET', url: '/health/live', headers: { traceparent } })).statusCode, 200)
  // A request after the probe, so the probe's spans would have been sent by the time its are.
  const later = callerTrace()
  t.equal((await injectAs(app, user, { method: 'GET', url: '/v1/tasks/00000000-0000-4000-8000-000000000000', headers: { traceparent: later.traceparent } })).statusCode, 404)
  const notFound = await collector.waitFor(later.traceId, (s) => named(s, 'GET /v1/tasks/:id') !== undefined)
  t.equal(named(notFound, 'GET /v1/tasks/:id')!.attributes['http.response.status_code'], 404)
  t.same(collector.spans.filter((s) => s.traceId === traceId), [], 'no span for a health probe')

  const bad = callerTrace()
  const conflict = await app.inject({ method: 'POST', url: '/v1/auth/signup', headers: { traceparent: bad.traceparent }, payload: { username: user.username, password: 'another-password-1' } })
  t.equal(conflict.statusCode, 409)
  const failed = await collector.waitFor(bad.traceId, (s) => s.some((x) => x.name === 'INSERT users' && x.status === 2))
  t.ok(failed.find((x) => x.name === 'INSERT users'), 'the statement that broke the unique constraint is marked failed')
})

tap.test('a mail sent and each call to the OpenID provider have their spans, in the request\'s trace', async (t) => {
  const mail = await startMailServer()
  t.teardown(mail.close)
  const provider = await startProvider(t, 'http://tasks.test')
  const { app } = await traced(t, { SMTP_URL: mail.url, PUBLIC_URL: 'http://tasks.test', WEBHOOK_DELIVERY: 'false', ...provider.env, OIDC_ALLOWED_REDIRECTS: 'https://client.example/cb' })

  const user = await createUser(app, 'mailed')
  const email = `${user.username}@example.test`
  t.equal((await injectAs(app, user, { method: 'PATCH', url: '/v1/users/me', payload: { email } })).statusCode, 200)
  const verification = callerTrace()
  t.equal((await injectAs(app, user, { method: 'POST', url: '/v1/users/me/email/verification', headers: { traceparent: verification.traceparent } })).statusCode, 202)
  await mail.waitFor(email, 1)
  const mailSpans = await collector.waitFor(verification.traceId, (s) => named(s, 'mail send') !== undefined && named(s, 'POST /v1/users/me/email/verification') !== undefined)
  const sent = named(mailSpans, 'mail send')!
  t.match(sent.attributes, { 'mail.message': 'verify-email', 'server.address': '127.0.0.1' })
  t.ok(descends(mailSpans, sent, named(mailSpans, 'POST /v1/users/me/email/verification')!), 'under the request that asked for it')
  t.notOk(collector.bodies.some((body) => body.includes(email)), 'the address is not exported')

  const start = callerTrace()
  const authorize = await app.inject({ method: 'GET', url: `/v1/auth/oidc/authorize?redirect_uri=${encodeURIComponent('https://client.example/cb')}`, headers: { traceparent: start.traceparent } })
  t.equal(authorize.statusCode, 302)
  const discovery = await collector.waitFor(start.traceId, (s) => s.some((x) => x.name.startsWith('oidc GET /.well-known/openid-configuration')))
  t.match(discovery.find((x) => x.name.startsWith('oidc GET'))!.attributes, { 'http.response.status_code': 200, 'url.full': `${provider.issuer}/.well-known/openid-configuration` })

  const back = await signInAtProvider(authorize.headers.location!, 'sub-traced', 'http://tasks.test/v1/auth/oidc/callback')
  const finish = callerTrace()
  const callback = await app.inject({ method: 'GET', url: `${back.pathname}${back.search}`, headers: { traceparent: finish.traceparent } })
  t.equal(callback.statusCode, 302)
  const exchange = await collector.waitFor(finish.traceId, (s) => s.some((x) => x.name.startsWith('oidc POST')) && named(s, 'GET /v1/auth/oidc/callback') !== undefined)
  const token = exchange.find((x) => x.name.startsWith('oidc POST'))!
  t.equal(token.kind, 3)
  t.equal(token.attributes['http.response.status_code'], 200)
  t.ok(descends(exchange, token, named(exchange, 'GET /v1/auth/oidc/callback')!), 'the token exchange is under the callback')
})
