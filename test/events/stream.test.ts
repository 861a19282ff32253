/**
 * The live stream (`GET /v1/events/stream`) over a real connection: the events of the feed as they
 * happen, in the feed's order and with the feed's content; resuming with Last-Event-ID or `after`;
 * who sees what; heartbeats; refusals as problems; a slow reader cut off and resuming without a gap;
 * streams ended cleanly when the app closes; the metrics.
 */
import tap from 'tap'
import { type IncomingMessage, request } from 'node:http'
import { once } from 'node:events'
import { sql } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { assertProblem, build, createUser, injectAs, type T, type TestUser } from '../helper.js'
import { openStream, type StreamedEvent } from './stream-client.js'
import { createAdmin } from '../auth/support.js'

async function listening (t: T, overrides: Record<string, string> = {}): Promise<{ app: FastifyInstance, base: string }> {
  const app = await build(t, overrides)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('not listening')
  return { app, base: `http://127.0.0.1:${address.port}` }
}

const createTask = async (app: FastifyInstance, user: TestUser, payload: Record<string, unknown>) =>
  (await injectAs(app, user, { method: 'POST', url: '/v1/tasks', payload })).json<Record<string, unknown>>()

/**
 * The user's whole feed by polling, for comparison, once it holds at least `count` events (an event
 * shows once every older transaction on the server has finished, other test files' included).
 */
async function polled (app: FastifyInstance, user: TestUser, count = 1): Promise<StreamedEvent[]> {
  for (let attempt = 0; ; attempt++) {
    const items: StreamedEvent[] = []
    let after = ''
    for (;;) {
      const page = (await injectAs(app, user, { method: 'GET', url: `/v1/events?limit=500${after}` })).json<{ items: StreamedEvent[], next_after: string }>()
      items.push(...page.items)
      if (page.items.length < 500) break
      after = `&after=${page.next_after}`
    }
    if (items.length >= count || attempt === 500) return items
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

async function metric (app: FastifyInstance, name: string): Promise<number> {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  return Number(line?.split(' ')[1])
}

tap.test('a stream from now carries each new event as the feed has it, after a retry field', async (t) => {
  const { app, base } = await listening(t)
  const user = await createUser(app, 'streamer')
  await polled(app, user) // a stream from now starts at the horizon: past the Inbox's event once a poll shows it
  const stream = await openStream(base, user.accessToken)
  t.teardown(stream.close)
  t.equal(stream.response.status, 200)
  t.match(stream.response.headers.get('content-type'), /^text\/event-stream/)
  t.ok(stream.response.headers.get('x-request-id'), 'X-Request-Id as on every response')
  t.equal(await metric(app, 'events_streams_open'), 1, 'the stream counts in /metrics')

  const task = await createTask(app, user, { title: 'Live one', tags: ['x'] })
  await injectAs(app, user, { method: 'PATCH', url: `/v1/tasks/${task.id as string}`, payload: { completed: true }, headers: { 'content-type': 'application/merge-patch+json' } })
  const got = await stream.waitFor(2)
  t.equal(stream.retry, 2000, 'the stream opens with the reconnection time')
  t.same(got.map((e) => e.event), ['task.created', 'task.updated'], 'the Inbox made before the stream opened is not replayed')
  t.same(got.map((e) => e.id), got.map((e) => e.data.id), '`id:` is the event id')
  const feed = await polled(app, user, 3)
  t.same(got.map((e) => e.data), feed.slice(-2), 'the same events, with the same content, as the poll')
  t.equal(got[0]!.data.data.title, 'Live one')

  stream.close()
  await stream.ended
  for (let i = 0; i < 50 && await metric(app, 'events_streams_open') !== 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(await metric(app, 'events_streams_open'), 0, 'a closed stream no longer counts')
  t.ok(await metric(app, 'events_stream_events_sent_total') >= 2, 'events sent are counted')
})

tap.test('a stream resumes after Last-Event-ID, or after `after`, with nothing missed or repeated', async (t) => {
  const { app, base } = await listening(t)
  const user = await createUser(app, 'resumer')
  for (let i = 0; i < 5; i++) await createTask(app, user, { title: `t${i}` })
  const feed = await polled(app, user, 6)
  t.equal(feed.length, 6, 'the Inbox and five tasks')

  const fromHeader = await openStream(base, user.accessToken, { lastEventId: feed[2]!.id, after: feed[4]!.id })
  t.teardown(fromHeader.close)
  const fromQuery = await openStream(base, user.accessToken, { after: feed[0]!.id })
  t.teardown(fromQuery.close)
  t.same((await fromHeader.waitFor(3)).map((e) => e.id), feed.slice(3).map((e) => e.id), 'Last-Event-ID wins over `after`: the history after it')
  t.same((await fromQuery.waitFor(5)).map((e) => e.id), feed.slice(1).map((e) => e.id), '`after` alone: the history after it')

  // History, then live, with no seam.
  await createTask(app, user, { title: 'after the history' })
  const [next] = (await fromHeader.waitFor(4)).slice(3)
  t.equal(next!.data.data.title, 'after the history')
  await fromQuery.waitFor(6)
  t.same(fromQuery.received.map((e) => e.id), [...feed.slice(1).map((e) => e.id), next!.id], 'the second stream the same')
})

tap.test('a stream carries only what its user may see: a project\'s events while they are a member', async (t) => {
  const { app, base } = await listening(t)
  const [owner, other] = [await createUser(app, 'owner'), await createUser(app, 'other')]
  await polled(app, other)
  const stream = await openStream(base, other.accessToken)
  t.teardown(stream.close)
  const titles = () => stream.received.map((e) => e.event === 'task.created' ? e.data.data.title : e.event)
  const project = (await injectAs(app, owner, { method: 'POST', url: '/v1/projects', payload: { name: 'Shared later' } })).json<{ id: string }>()
  await createTask(app, owner, { title: 'before joining', project_id: project.id })
  await injectAs(app, owner, { method: 'POST', url: `/v1/projects/${project.id}/members`, payload: { username: other.username, role: 'editor' } })
  await createTask(app, owner, { title: 'after joining', project_id: project.id })
  await stream.waitFor(2)
  for (let i = 0; i < 100 && !titles().includes('after joining'); i++) await new Promise((resolve) => setTimeout(resolve, 20))
  await injectAs(app, owner, { method: 'DELETE', url: `/v1/projects/${project.id}/members/${other.id}` })
  await createTask(app, owner, { title: 'after leaving', project_id: project.id })
  await createTask(app, other, { title: 'marker' })
  for (let i = 0; i < 100 && titles().at(-1) !== 'marker'; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  // Membership is checked when an event is read, as the poll does: the project's events from before
  // the member joined may come too, if the stream had not passed them yet.
  t.same(titles().filter((e) => e !== 'project.created' && e !== 'before joining'), ['member.added', 'after joining', 'member.removed', 'marker'], 'from joining to leaving, then nothing of the project')
})

tap.test('an account disabled while its stream is open hears nothing more', async (t) => {
  const { app, base } = await listening(t)
  const [owner, member, admin] = [await createUser(app, 'owner'), await createUser(app, 'member'), await createAdmin(app)]
  const project = (await injectAs(app, owner, { method: 'POST', url: '/v1/projects', payload: { name: 'Shared' } })).json<{ id: string }>()
  await injectAs(app, owner, { method: 'POST', url: `/v1/projects/${project.id}/members`, payload: { username: member.username, role: 'editor' } })
  await polled(app, member, 2)
  const [watching, listening2] = [await openStream(base, owner.accessToken), await openStream(base, member.accessToken)]
  t.teardown(watching.close)
  t.teardown(listening2.close)
  const titles = (stream: typeof watching) => stream.received.filter((e) => e.event === 'task.created').map((e) => e.data.data.title)
  await createTask(app, owner, { title: 'while enabled', project_id: project.id })
  await listening2.waitFor(1)
  t.equal((await injectAs(app, admin, { method: 'PATCH', url: `/v1/users/${member.id}`, payload: { disabled: true } })).statusCode, 200)
  await createTask(app, owner, { title: 'while disabled', project_id: project.id })
  for (let i = 0; i < 200 && !titles(watching).includes('while disabled'); i++) await new Promise((resolve) => setTimeout(resolve, 20))
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.same(titles(watching), ['while enabled', 'while disabled'], 'the owner\'s stream has both')
  t.same(titles(listening2), ['while enabled'], 'the disabled member\'s stream stopped at the change')
})

tap.test('Accept is read as media ranges: */* (curl\'s default), text/* and any letter case open the stream', async (t) => {
  const { app, base } = await listening(t)
  const user = await createUser(app, 'ranges')
  for (const accept of ['*/*', 'text/*', 'Text/Event-Stream', 'application/json;q=0.9, text/event-stream;q=0.1']) {
    const aborted = new AbortController()
    const res = await fetch(`${base}/v1/events/stream`, { headers: { authorization: `Bearer ${user.accessToken}`, accept }, signal: aborted.signal })
    t.equal(res.status, 200, accept)
    t.match(res.headers.get('content-type'), /^text\/event-stream/)
    aborted.abort()
  }
})

tap.test('refusals are problems: a refused Accept, a malformed Last-Event-ID, no credentials, a purged position', async (t) => {
  const { app } = await listening(t)
  const user = await createUser(app, 'refused')
  assertProblem(t, await injectAs(app, user, { method: 'GET', url: '/v1/events/stream', headers: { accept: 'application/json' } }), 406, 'NOT_ACCEPTABLE')
  assertProblem(t, await injectAs(app, user, { method: 'GET', url: '/v1/events/stream', headers: { accept: 'text/event-stream', 'last-event-id': 'yesterday' } }), 400, 'VALIDATION_FAILED')
  assertProblem(t, await injectAs(app, user, { method: 'GET', url: '/v1/events/stream?after=1', headers: { accept: 'text/event-stream' } }), 400, 'VALIDATION_FAILED')
  // Within the pattern's digits but past what the database holds: refused, not a database error.
  const beyond = await injectAs(app, user, { method: 'GET', url: '/v1/events/stream', headers: { accept: 'text/event-stream', 'last-event-id': '1-9999999999999999999' } })
  t.match(assertProblem(t, beyond, 400, 'VALIDATION_FAILED').errors, [{ in: 'header', path: '/last-event-id' }])
  t.match(assertProblem(t, await injectAs(app, user, { method: 'GET', url: '/v1/events?after=99999999999999999999-1' }), 400, 'VALIDATION_FAILED').errors, [{ in: 'query', path: '/after' }])
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/events/stream', headers: { accept: 'text/event-stream' } }), 401, 'UNAUTHENTICATED')

  const [first] = await polled(app, user)
  await createTask(app, user, { title: 'to be purged' })
  await app.db.execute(sql`update events set occurred_at = now() - interval '40 days' where project_id = ${first!.project_id}::uuid`)
  await app.runHousekeeping()
  assertProblem(t, await injectAs(app, user, { method: 'GET', url: '/v1/events/stream', headers: { accept: 'text/event-stream', 'last-event-id': first!.id } }), 410, 'SYNC_EXPIRED')
})

tap.test('heartbeat comments keep an idle stream open', async (t) => {
  const { app, base } = await listening(t, { EVENTS_STREAM_HEARTBEAT_MS: '100' })
  const user = await createUser(app, 'quiet')
  await polled(app, user)
  const stream = await openStream(base, user.accessToken)
  t.teardown(stream.close)
  for (let i = 0; i < 100 && stream.comments.length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(stream.comments.length >= 3, `comments came (${stream.comments.length})`)
  t.equal(stream.received.length, 0, 'and no events')
})

tap.test('closing the app ends its streams cleanly', async (t) => {
  const { app, base } = await listening(t)
  const user = await createUser(app, 'closing')
  const stream = await openStream(base, user.accessToken)
  await createTask(app, user, { title: 'one' })
  await stream.waitFor(1)
  await app.close()
  t.same(await stream.ended, { clean: true }, 'the response ended, not the connection broken off')
})

tap.test('a reader that leaves too much unread is cut off, and resumes without a gap', async (t) => {
  const { app, base } = await listening(t, { EVENTS_STREAM_MAX_BUFFER_BYTES: '16384' })
  const user = await createUser(app, 'slow')
  const [inbox] = await polled(app, user)
  const chunks: Buffer[] = []
  const req = request(`${base}/v1/events/stream`, { headers: { authorization: `Bearer ${user.accessToken}`, accept: 'text/event-stream' } })
  req.end()
  const [res] = await once(req, 'response') as [IncomingMessage]
  // Reads nothing more until told: the kernel's buffers fill, then the server's.
  res.pause()
  res.on('data', (chunk: Buffer) => chunks.push(chunk))
  const closed = new Promise((resolve) => { res.on('close', resolve); res.on('error', resolve) })

  // Enough events, of about 10 kB each, to fill the kernel's buffers of both ends many times over.
  const seed = await createTask(app, user, { title: 'seed', description: 'd'.repeat(10_000) })
  await app.db.execute(sql`
    insert into events (type, actor_id, project_id, data)
    select e.type, e.actor_id, e.project_id, e.data || jsonb_build_object('title', 'copy ' || g) from events e, generate_series(1, 3000) g
    where e.type = 'task.created' and e.data->>'id' = ${seed.id as string}`)
  app.feedSignal.changed()
  for (let i = 0; i < 500 && await metric(app, 'events_streams_cut_off_total') < 1; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(await metric(app, 'events_streams_cut_off_total'), 1, 'the stream was cut off')

  res.resume()
  await closed
  // The stream starts at the feed's horizon, which may lie before the Inbox's event: tasks only.
  const body = Buffer.concat(chunks).toString()
  const ids = [...body.matchAll(/^id: (.+)\nevent: task\.created$/gm)].map((m) => m[1]!)
  t.ok(ids.length < 3001, `the slow reader got part of the events (${ids.length})`)

  // Resuming where it was cut off gives the rest, so that all together are the feed.
  const resumed = await openStream(base, user.accessToken, { lastEventId: ids.at(-1) ?? inbox!.id })
  t.teardown(resumed.close)
  const feed = (await polled(app, user, 3002)).filter((e) => e.type === 'task.created')
  const rest = (await resumed.waitFor(feed.length - ids.length, 30_000)).filter((e) => e.event === 'task.created')
  t.same([...ids, ...rest.map((e) => e.id)], feed.map((e) => e.id), 'every event once, in order')
})
