/**
 * Webhooks against a real receiver (a listening server in the test): the CRUD and its refusals; each
 * event delivered signed per Standard Webhooks (checked with the `standardwebhooks` package); the
 * filters; retries on 500, timeouts, a receiver that is down and 429 with Retry-After; 410 turning
 * the webhook off; ping, manual retry and secret rotation with two signatures; the outbound guard at
 * creation and at delivery; secrets encrypted at rest; the metrics.
 */
import tap from 'tap'
import { and, eq, sql } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { Webhook as Verifier } from 'standardwebhooks'
import { verifyWebhook, WebhookVerificationError } from '../../sdk/src/index.js'
import { assertProblem, build, createUser, injectAs, type T, type TestUser } from '../helper.js'
import { webhookDeliveries } from '../../src/db/schema.js'
import { createAdmin } from '../auth/support.js'
import { type Received, startReceiver, type Receiver } from './receiver.js'

interface WebhookBody { id: string, secret: string, enabled: boolean, disabled_reason: string | null, url: string, events: string[], project_id: string | null }
interface Delivery { id: string, event_id: string, event_type: string, attempt: number, status: string, status_code: number | null, error: string | null, next_attempt_at: string | null, attempted_at: string | null, response_excerpt: string | null }

const fast = { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_RETRY_SCHEDULE: '1,1,1', WEBHOOK_TIMEOUT_MS: '1000' }

async function setUp (t: T, overrides: Record<string, string> = {}): Promise<{ app: FastifyInstance, user: TestUser, receiver: Receiver }> {
  const app = await build(t, { ...fast, ...overrides })
  const receiver = await startReceiver()
  t.teardown(receiver.close)
  return { app, user: await createUser(app, 'hooked'), receiver }
}

async function createWebhook (app: FastifyInstance, user: TestUser, payload: Record<string, unknown>): Promise<WebhookBody> {
  const res = await injectAs(app, user, { method: 'POST', url: '/v1/webhooks', payload })
  if (res.statusCode !== 201) throw new Error(`create webhook: ${res.statusCode} ${res.body}`)
  return res.json<WebhookBody>()
}

const createTask = async (app: FastifyInstance, user: TestUser, payload: Record<string, unknown>) =>
  (await injectAs(app, user, { method: 'POST', url: '/v1/tasks', payload })).json<Record<string, unknown>>()

async function deliveries (app: FastifyInstance, user: TestUser, webhookId: string): Promise<Delivery[]> {
  return (await injectAs(app, user, { method: 'GET', url: `/v1/webhooks/${webhookId}/deliveries?limit=100` })).json<{ items: Delivery[] }>().items
}

/** Waits until the webhook's attempts satisfy `done`. */
async function attemptsUntil (app: FastifyInstance, user: TestUser, webhookId: string, done: (items: Delivery[]) => boolean, timeoutMs = 15_000): Promise<Delivery[]> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const items = await deliveries(app, user, webhookId)
    if (done(items)) return items
    if (Date.now() > deadline) throw new Error(`attempts not as expected: ${JSON.stringify(items.map((d) => [d.attempt, d.status, d.status_code, d.error]))}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const verify = (secret: string, request: Received) => new Verifier(secret).verify(request.body, request.headers as Record<string, string>)

tap.test('the CRUD: the secret once, encrypted at rest; anyone else\'s webhook is a 404; bad input refused', async (t) => {
  const { app, user, receiver } = await setUp(t)
  const other = await createUser(app, 'other')
  const created = await injectAs(app, user, { method: 'POST', url: '/v1/webhooks', payload: { url: receiver.url, events: ['task.created'], description: 'mine' } })
  t.equal(created.statusCode, 201)
  const webhook = created.json<WebhookBody>()
  t.equal(created.headers.location, `/v1/webhooks/${webhook.id}`)
  t.match(webhook, { url: receiver.url, events: ['task.created'], project_id: null, enabled: true, disabled_reason: null, description: 'mine' })
  t.match(webhook.secret, /^whsec_[A-Za-z0-9+/]{43}=$/, 'a Standard Webhooks secret of 32 bytes')

  const read = (await injectAs(app, user, { method: 'GET', url: `/v1/webhooks/${webhook.id}` })).json<Record<string, unknown>>()
  t.notOk('secret' in read, 'never shown again')
  t.same((await injectAs(app, user, { method: 'GET', url: '/v1/webhooks' })).json<{ items: Array<{ id: string }> }>().items.map((w) => w.id), [webhook.id])
  const [stored] = await app.db.execute(sql`select secret from webhooks where id = ${webhook.id}`).then((r) => (Array.isArray(r) ? r : (r as unknown as { rows: unknown[] }).rows) as Array<{ secret: string }>)
  t.match(stored!.secret, /^v1\./, 'stored sealed')
  t.notOk(stored!.secret.includes(webhook.secret.slice(6)), 'not in the clear')

  const patched = await injectAs(app, user, { method: 'PATCH', url: `/v1/webhooks/${webhook.id}`, payload: { events: ['*'], description: null }, headers: { 'content-type': 'application/merge-patch+json' } })
  t.match(patched.json(), { events: ['*'], description: null })

  for (const [method, url] of [['GET', ''], ['PATCH', ''], ['DELETE', ''], ['POST', '/ping'], ['POST', '/rotate-secret'], ['GET', '/deliveries']] as const) {
    assertProblem(t, await injectAs(app, other, { method, url: `/v1/webhooks/${webhook.id}${url}`, ...(method === 'PATCH' ? { payload: { enabled: false } } : {}) }), 404, 'WEBHOOK_NOT_FOUND')
  }
  assertProblem(t, await injectAs(app, user, { method: 'POST', url: '/v1/webhooks', payload: { url: receiver.url, events: ['task.exploded'] } }), 400, 'VALIDATION_FAILED')
  assertProblem(t, await injectAs(app, user, { method: 'POST', url: '/v1/webhooks', payload: { url: receiver.url, events: [] } }), 400, 'VALIDATION_FAILED')
  assertProblem(t, await injectAs(app, user, { method: 'POST', url: '/v1/webhooks', payload: { url: 'ftp://example.com/x', events: ['*'] } }), 422, 'WEBHOOK_URL_REFUSED')
  const project = (await injectAs(app, other, { method: 'POST', url: '/v1/projects', payload: { name: 'Not yours' } })).json<{ id: string }>()
  assertProblem(t, await injectAs(app, user, { method: 'POST', url: '/v1/webhooks', payload: { url: receiver.url, events: ['*'], project_id: project.id } }), 404, 'PROJECT_NOT_FOUND')
  assertProblem(t, await injectAs(app, other, { method: 'POST', url: `/v1/webhooks/${webhook.id}/deliveries/${webhook.id}/retry` }), 404, 'WEBHOOK_NOT_FOUND')
  assertProblem(t, await injectAs(app, user, { method: 'POST', url: `/v1/webhooks/${webhook.id}/deliveries/${webhook.id}/retry` }), 404, 'DELIVERY_NOT_FOUND')

  t.equal((await injectAs(app, user, { method: 'DELETE', url: `/v1/webhooks/${webhook.id}` })).statusCode, 204)
  assertProblem(t, await injectAs(app, user, { method: 'GET', url: `/v1/webhooks/${webhook.id}` }), 404, 'WEBHOOK_NOT_FOUND')
})

tap.test('without WEBHOOK_ALLOW_PRIVATE_NETWORKS, URLs must be https to public addresses', async (t) => {
  const app = await build(t)
  const user = await createUser(app, 'guarded')
  for (const url of ['http://example.com/x', 'https://127.0.0.1/x', 'https://localhost/x', 'https://10.1.2.3/x', 'https://192.168.0.10/x', 'https://169.254.169.254/latest/meta-data', 'https://[::1]/x', 'https://[fd00:ec2::254]/x', 'https://[::ffff:127.0.0.1]/x', 'https://100.64.0.1/x', 'https://user:pw@93.184.215.14/x']) {
    const res = await injectAs(app, user, { method: 'POST', url: '/v1/webhooks', payload: { url, events: ['*'] } })
    assertProblem(t, res, 422, 'WEBHOOK_URL_REFUSED')
  }
  const accepted = await injectAs(app, user, { method: 'POST', url: '/v1/webhooks', payload: { url: 'https://93.184.215.14/hook', events: ['*'] } })
  t.equal(accepted.statusCode, 201, 'a public address is accepted')
})

tap.test('each event is delivered once, signed per Standard Webhooks, with the feed\'s id and the resource', async (t) => {
  const { app, user, receiver } = await setUp(t)
  const webhook = await createWebhook(app, user, { url: receiver.url, events: ['task.created', 'task.deleted'] })
  const task = await createTask(app, user, { title: 'Hooked', tags: ['x'] })
  await injectAs(app, user, { method: 'PATCH', url: `/v1/tasks/${task.id as string}`, payload: { completed: true }, headers: { 'content-type': 'application/merge-patch+json' } })
  await injectAs(app, user, { method: 'DELETE', url: `/v1/tasks/${task.id as string}` })
  const [created, deleted] = await receiver.waitFor(2)
  t.same(verify(webhook.secret, created!), JSON.parse(created!.body), 'the signature verifies with the secret')
  const body = JSON.parse(created!.body) as { type: string, timestamp: string, data: Record<string, unknown> }
  t.same(Object.keys(body), ['type', 'timestamp', 'data'])
  t.equal(body.type, 'task.created')
  t.same(body.data, task, 'data is the task as the API returned it')
  t.match(created!.headers['content-type'], /^application\/json/)
  const feed = (await injectAs(app, user, { method: 'GET', url: '/v1/events' })).json<{ items: Array<{ id: string, type: string, occurred_at: string }> }>().items
  const event = feed.find((e) => e.type === 'task.created')!
  t.equal(created!.headers['webhook-id'], event.id, 'webhook-id is the event id')
  t.equal(body.timestamp, event.occurred_at)
  t.ok(Math.abs(Number(created!.headers['webhook-timestamp']) - Date.now() / 1000) < 60, 'webhook-timestamp is the attempt\'s, in seconds')
  t.equal(JSON.parse(deleted!.body).type, 'task.deleted', 'task.updated was not asked for')
  t.throws(() => verify('whsec_' + Buffer.alloc(32, 1).toString('base64'), created!), 'another secret does not verify')
  t.same(verifyWebhook(webhook.secret, created!.headers, created!.body), body, 'the SDK\'s verifyWebhook returns the body')
  t.throws(() => verifyWebhook(webhook.secret, created!.headers, created!.body.replace('Hooked', 'Hacked')), WebhookVerificationError, 'and refuses a changed one')
  t.throws(() => verifyWebhook(webhook.secret, { ...created!.headers, 'webhook-timestamp': String(Math.floor(Date.now() / 1000) - 600) }, created!.body), WebhookVerificationError, 'or an old timestamp')

  const items = await attemptsUntil(app, user, webhook.id, (d) => d.length === 2 && d.every((x) => x.status === 'succeeded'))
  // Both were queued by one dispatch, at the same instant: their order in the list is not fixed.
  t.match(items.find((d) => d.event_type === 'task.created'), { event_id: event.id, event_type: 'task.created', attempt: 1, status: 'succeeded', status_code: 200, error: null, next_attempt_at: null, response_excerpt: 'ok' })
  await new Promise((resolve) => setTimeout(resolve, 600))
  t.equal(receiver.received.length, 2, 'nothing is delivered twice')

  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.match(metrics, /webhook_deliveries_total\{outcome="succeeded"\} [2-9]/)
  t.match(metrics, /webhook_queue_depth \d+/)

  await app.db.execute(sql`update webhook_deliveries set created_at = now() - interval '31 days' where webhook_id = ${webhook.id}::uuid`)
  await app.runHousekeeping()
  t.same(await deliveries(app, user, webhook.id), [], 'attempts past the retention are purged')
})

tap.test('a webhook for one project gets that project\'s events only, and only while its owner is a member', async (t) => {
  const { app, user, receiver } = await setUp(t)
  const owner = await createUser(app, 'owner')
  const project = (await injectAs(app, owner, { method: 'POST', url: '/v1/projects', payload: { name: 'Shared' } })).json<{ id: string }>()
  await injectAs(app, owner, { method: 'POST', url: `/v1/projects/${project.id}/members`, payload: { username: user.username, role: 'viewer' } })
  await createWebhook(app, user, { url: receiver.url, events: ['*'], project_id: project.id })
  await createTask(app, user, { title: 'in my Inbox' })
  await createTask(app, owner, { title: 'shared one', project_id: project.id })
  // Whether the owner may see an event is decided when it is dispatched: let it go out first.
  await receiver.waitFor(1)
  await injectAs(app, owner, { method: 'DELETE', url: `/v1/projects/${project.id}/members/${user.id}` })
  await createTask(app, owner, { title: 'after leaving', project_id: project.id })
  await receiver.waitFor(2)
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.same(receiver.received.map((r) => { const b = JSON.parse(r.body) as { type: string, data: { title?: string } }; return b.data.title ?? b.type }), ['shared one', 'member.removed'])
})

tap.test('the webhook of an account disabled since gets nothing more: its attempts are cancelled', async (t) => {
  const { app, user, receiver } = await setUp(t)
  const [owner, admin] = [await createUser(app, 'owner'), await createAdmin(app)]
  const project = (await injectAs(app, owner, { method: 'POST', url: '/v1/projects', payload: { name: 'Shared' } })).json<{ id: string }>()
  await injectAs(app, owner, { method: 'POST', url: `/v1/projects/${project.id}/members`, payload: { username: user.username, role: 'viewer' } })
  const webhook = await createWebhook(app, user, { url: receiver.url, events: ['task.created'] })
  await createTask(app, owner, { title: 'while enabled', project_id: project.id })
  await receiver.waitFor(1)
  t.equal((await injectAs(app, admin, { method: 'PATCH', url: `/v1/users/${user.id}`, payload: { disabled: true } })).statusCode, 200)
  await createTask(app, owner, { title: 'while disabled', project_id: project.id })
  let cancelled: Array<{ error: string | null }> = []
  for (let i = 0; i < 300 && cancelled.length === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    cancelled = await app.db.select({ error: webhookDeliveries.error }).from(webhookDeliveries)
      .where(and(eq(webhookDeliveries.webhookId, webhook.id), eq(webhookDeliveries.status, 'cancelled')))
  }
  t.match(cancelled, [{ error: /may see/ }], 'the attempt is cancelled')
  t.equal(receiver.received.length, 1, 'nothing was sent after the account was disabled')
})

tap.test('failures are retried on the schedule with the same webhook-id; 500 then 200 delivers', async (t) => {
  const { app, user, receiver } = await setUp(t)
  receiver.answer = (_, n) => n === 1 ? { status: 500, body: 'boom' } : { status: 204 }
  const webhook = await createWebhook(app, user, { url: receiver.url, events: ['task.created'] })
  await createTask(app, user, { title: 'retried' })
  const [first, second] = await receiver.waitFor(2)
  t.equal(first!.headers['webhook-id'], second!.headers['webhook-id'], 'the same webhook-id')
  t.ok(second!.at - first!.at >= 700, `retried after the schedule's second, less its jitter (${second!.at - first!.at} ms)`)
  const items = await attemptsUntil(app, user, webhook.id, (d) => d.some((x) => x.status === 'succeeded'))
  t.match(items, [{ attempt: 2, status: 'succeeded', status_code: 204 }, { attempt: 1, status: 'failed', status_code: 500, error: 'the receiver answered 500', response_excerpt: 'boom' }])
  t.ok(items[1]!.next_attempt_at !== null, 'the failed attempt says when the next was due')
})

tap.test('a slow receiver times out, a closed port fails to connect; both are retried until the schedule ends', async (t) => {
  const { app, user, receiver } = await setUp(t, { WEBHOOK_RETRY_SCHEDULE: '1' })
  receiver.answer = () => ({ status: 200, delayMs: 3000 })
  const slow = await createWebhook(app, user, { url: receiver.url, events: ['task.created'] })
  const closed = await startReceiver()
  await closed.close()
  const down = await createWebhook(app, user, { url: closed.url, events: ['task.created'] })
  await createTask(app, user, { title: 'unlucky' })
  const slowItems = await attemptsUntil(app, user, slow.id, (d) => d.length === 2 && d.every((x) => x.status === 'failed'))
  t.match(slowItems, [{ attempt: 2, error: 'no answer within 1000 ms', next_attempt_at: null }, { attempt: 1, error: 'no answer within 1000 ms' }], 'timed out twice, then no more')
  const downItems = await attemptsUntil(app, user, down.id, (d) => d.length === 2 && d.every((x) => x.status === 'failed'))
  t.match(downItems[0]!.error, /^could not connect: ECONNREFUSED/)
  t.equal(downItems[0]!.next_attempt_at, null, 'the last attempt has no next')
})

tap.test('429 with Retry-After waits as asked; 410 turns the webhook off', async (t) => {
  const { app, user, receiver } = await setUp(t)
  receiver.answer = (_, n) => n === 1 ? { status: 429, headers: { 'retry-after': '3' } } : { status: 410 }
  const webhook = await createWebhook(app, user, { url: receiver.url, events: ['task.created'] })
  await createTask(app, user, { title: 'throttled' })
  const [first, second] = await receiver.waitFor(2, 20_000)
  t.ok(second!.at - first!.at >= 2900, `the retry waited for Retry-After (${second!.at - first!.at} ms)`)
  await attemptsUntil(app, user, webhook.id, (d) => d[0]?.status_code === 410)
  const after = (await injectAs(app, user, { method: 'GET', url: `/v1/webhooks/${webhook.id}` })).json<WebhookBody>()
  t.match(after, { enabled: false, disabled_reason: 'the receiver answered 410 Gone' })
  await createTask(app, user, { title: 'not sent' })
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.equal(receiver.received.length, 2, 'nothing more is sent')
  const gone = (await deliveries(app, user, webhook.id)).find((d) => d.status_code === 410)
  assertProblem(t, await injectAs(app, user, { method: 'POST', url: `/v1/webhooks/${webhook.id}/deliveries/${gone!.id}/retry` }), 409, 'WEBHOOK_DISABLED')
  const on = await injectAs(app, user, { method: 'PATCH', url: `/v1/webhooks/${webhook.id}`, payload: { enabled: true } })
  t.match(on.json(), { enabled: true, disabled_reason: null }, 'turned back on')
})

tap.test('ping, manual retry, and a rotated secret signing beside the old one', async (t) => {
  const { app, user, receiver } = await setUp(t, { WEBHOOK_RETRY_SCHEDULE: '1' })
  const webhook = await createWebhook(app, user, { url: receiver.url, events: ['task.created'] })
  t.equal((await injectAs(app, user, { method: 'POST', url: `/v1/webhooks/${webhook.id}/ping` })).statusCode, 202)
  const [ping] = await receiver.waitFor(1)
  t.match(JSON.parse(ping!.body), { type: 'webhook.ping', data: { webhook_id: webhook.id } })
  t.match(ping!.headers['webhook-id'], /^ping_/)
  verify(webhook.secret, ping!)

  const rotated = await injectAs(app, user, { method: 'POST', url: `/v1/webhooks/${webhook.id}/rotate-secret` })
  t.equal(rotated.statusCode, 200)
  const { secret } = rotated.json<{ secret: string }>()
  t.not(secret, webhook.secret)
  receiver.answer = () => ({ status: 500 })
  await createTask(app, user, { title: 'after rotation' })
  const [, signed] = await receiver.waitFor(2)
  const signatures = String(signed!.headers['webhook-signature']).split(' ')
  t.equal(signatures.length, 2, 'two signatures for a day after a rotation')
  t.ok(signatures.every((s) => s.startsWith('v1,')))
  verify(secret, signed!)
  verify(webhook.secret, signed!)

  const failed = await attemptsUntil(app, user, webhook.id, (d) => d.filter((x) => x.event_type === 'task.created').length === 2 && d.every((x) => x.status !== 'pending'))
  t.equal(failed[0]!.next_attempt_at, null, 'the retries ran out')
  receiver.answer = () => ({ status: 200 })
  t.equal((await injectAs(app, user, { method: 'POST', url: `/v1/webhooks/${webhook.id}/deliveries/${failed[0]!.id}/retry` })).statusCode, 202)
  const after = await attemptsUntil(app, user, webhook.id, (d) => d[0]?.status === 'succeeded' && d[0].attempt === 3)
  t.equal(after[0]!.event_id, failed[0]!.event_id, 'the same event, a third attempt')
})

tap.test('the guard holds at each delivery: a URL allowed once is refused when private networks no longer are', async (t) => {
  const receiver = await startReceiver()
  t.teardown(receiver.close)
  const allowing = await build(t, fast)
  const user = await createUser(allowing, 'guarded')
  const webhook = await createWebhook(allowing, user, { url: `https://localhost:${receiver.port}/hook`, events: ['task.created'] })
  await allowing.close()
  const strict = await build(t, { WEBHOOK_RETRY_SCHEDULE: '1' })
  await createTask(strict, user, { title: 'not to loopback' })
  const items = await attemptsUntil(strict, user, webhook.id, (d) => d.length === 2 && d.every((x) => x.status === 'failed'))
  t.match(items[0]!.error, /^refused: localhost resolves to .*not a public address/)
  t.equal(receiver.received.length, 0, 'nothing reached the receiver')
})

tap.test('redirects are not followed; only the start of a long answer is kept; 5 days of failures turn a webhook off', async (t) => {
  const { app, user, receiver } = await setUp(t, { WEBHOOK_RETRY_SCHEDULE: '1' })
  const target = await startReceiver()
  t.teardown(target.close)
  receiver.answer = (_, n) => n === 1 ? { status: 302, headers: { location: target.url } } : { status: 500, body: 'x'.repeat(100_000) }
  const webhook = await createWebhook(app, user, { url: receiver.url, events: ['task.created'] })
  // As if every attempt had failed since 6 days ago.
  await app.db.execute(sql`update webhooks set failing_since = now() - interval '6 days' where id = ${webhook.id}::uuid`)
  await createTask(app, user, { title: 'redirected' })
  const items = await attemptsUntil(app, user, webhook.id, (d) => d.some((x) => x.status === 'failed'))
  t.match(items.at(-1), { attempt: 1, status_code: 302, error: 'the receiver answered 302; redirects are not followed' })
  t.equal(target.received.length, 0, 'the redirect\'s target was never called')
  const after = (await injectAs(app, user, { method: 'GET', url: `/v1/webhooks/${webhook.id}` })).json<WebhookBody>()
  t.match(after, { enabled: false, disabled_reason: 'every attempt has failed for 5 days' })
  t.equal(items.find((x) => x.attempt === 2)?.status ?? 'cancelled', 'cancelled', 'the retry still to come is cancelled')

  // Turned on again, a long answer is cut to its first 1 024 bytes.
  await injectAs(app, user, { method: 'PATCH', url: `/v1/webhooks/${webhook.id}`, payload: { enabled: true } })
  await createTask(app, user, { title: 'long answer' })
  const later = await attemptsUntil(app, user, webhook.id, (d) => d.some((x) => x.status_code === 500))
  t.equal(later.find((x) => x.status_code === 500)!.response_excerpt!.length, 1024)
})

tap.test('a dispatch pass with nothing to do locks and writes nothing; one with events moves the place', async (t) => {
  const app = await build(t, { ...fast, WEBHOOK_DELIVERY: 'false' })
  const user = await createUser(app, 'idle')
  // The place's row version (xmin) and lock (xmax): a pass that locked or moved it changes them.
  const place = async () => await app.db.execute(sql`select xmin::text as xmin, xmax::text as xmax, txid::text as txid, id::text as id from webhook_dispatch`)
    .then((r) => ((Array.isArray(r) ? r : (r as unknown as { rows: unknown[] }).rows) as Array<Record<string, string>>)[0]!)
  // The file's earlier tests left webhooks on in this database.
  await app.db.execute(sql`update webhooks set enabled = false`)
  await createTask(app, user, { title: 'Before any webhook' })
  const start = await place()
  t.equal(await app.webhooksRepository.dispatch(500), 0, 'no webhook on: nothing read')
  const skipped = await place()
  t.not(skipped.txid, start.txid, 'but the place moves past what nobody is to get')
  await createTask(app, user, { title: 'Still no webhook' })
  t.equal(await app.webhooksRepository.dispatch(500), 0, 'no webhook on, within a second of that pass: nothing read')
  t.same(await place(), skipped, 'and the place is neither locked nor written')

  const receiver = await startReceiver()
  t.teardown(receiver.close)
  await createWebhook(app, user, { url: receiver.url, events: ['*'] })
  await createTask(app, user, { title: 'Hooked' })
  const read = await app.webhooksRepository.dispatch(500)
  t.ok(read !== undefined && read >= 2, `a webhook on: the events since the place are read (${String(read)})`)
  const moved = await place()
  t.not(moved.txid, skipped.txid, 'and the place moves past them')
  t.equal(await app.webhooksRepository.dispatch(500), 0, 'caught up: nothing read')
  t.same(await place(), moved, 'and the place is left alone')
})
