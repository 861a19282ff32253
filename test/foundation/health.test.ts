import tap from 'tap'
import { build } from '../helper.js'

tap.test('GET /health/live answers 200 with a request id', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'GET', url: '/health/live' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ok' })
  t.match(res.headers['x-request-id'], /^[0-9a-f-]{36}$/)
})

tap.test('GET /health/ready is 200 when the database answers and migrations are applied', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ok', checks: { database: 'ok', migrations: 'ok', shutting_down: false } })
})

tap.test('GET /health/ready is 503 problem+json while shutting down', async (t) => {
  const app = await build(t)
  app.shuttingDown = true
  const res = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '5')
  t.match(res.headers['content-type'], /application\/problem\+json/)
  t.match(res.json(), { code: 'SERVICE_UNAVAILABLE', detail: /shutting down/ })
})
