/**
 * Answers to requests that go wrong before a route runs, and to oversized bodies, as a client on a
 * real socket sees them: problem+json from the catalogue with X-Request-Id and the security headers,
 * never the input echoed back, and a 413 the client always gets to read.
 */
import { type IncomingHttpHeaders, Agent, request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import tap from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, createUser, type T } from '../helper.js'

async function listening (t: T, overrides: Record<string, string> = {}): Promise<{ app: FastifyInstance, port: number }> {
  const app = await build(t, overrides)
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, port: (app.server.address() as { port: number }).port }
}

interface RawResponse { status: number, headers: Record<string, string>, body: string }

/** Sends `data` as it is on a new connection and reads everything the server writes until it closes. */
async function raw (port: number, data: string): Promise<RawResponse> {
  const text = await new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let out = ''
    socket.on('data', (d) => { out += d.toString() })
    socket.on('error', reject)
    socket.on('end', () => { socket.end(); resolve(out) })
    socket.write(data)
  })
  const [head = '', body = ''] = text.split('\r\n\r\n', 2)
  const [statusLine = '', ...lines] = head.split('\r\n')
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]))
  return { status: Number(statusLine.split(' ')[1]), headers, body }
}

const securityHeaders = ['content-security-policy', 'cross-origin-resource-policy', 'strict-transport-security', 'x-content-type-options', 'x-frame-options']

function assertCatalogued (t: T, res: RawResponse, status: number, code: string, input: string): void {
  t.equal(res.status, status, `${code}: status`)
  t.match(res.headers['content-type'], /^application\/problem\+json/, `${code}: problem+json`)
  t.match(res.headers['x-request-id'], /^[0-9a-f-]{36}$/, `${code}: X-Request-Id`)
  for (const name of securityHeaders) t.ok(res.headers[name], `${code}: ${name}`)
  const body = JSON.parse(res.body) as Record<string, unknown>
  t.match(body, { status, code, request_id: res.headers['x-request-id'] }, `${code}: the catalogue's shape`)
  t.notOk(res.body.includes(input), `${code}: the input is not echoed`)
}

tap.test('errors raised before a route runs answer from the catalogue', async (t) => {
  const { port } = await listening(t)
  const long = 'a'.repeat(300)
  const big = 'b'.repeat(20_000)
  const cases: Array<[string, string, number, string, string]> = [
    ['a path parameter past 200 characters', `GET /v1/tasks/${long} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 414, 'URI_TOO_LONG', long],
    ['a malformed percent-encoding', 'GET /v1/tasks/%E0%A4%Azz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 400, 'BAD_REQUEST', '%E0%A4%Azz'],
    ['headers past the limit', `GET /v1/tasks HTTP/1.1\r\nHost: x\r\nX-Big: ${big}\r\n\r\n`, 431, 'HEADERS_TOO_LARGE', big],
    ['an unknown method', 'FROBNICATE /v1/tasks HTTP/1.1\r\nHost: x\r\n\r\n', 501, 'NOT_IMPLEMENTED', 'FROBNICATE'],
    ['CONNECT, which is for proxies', 'CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n', 501, 'NOT_IMPLEMENTED', 'evil.example'],
    ['a request target that is not a path', 'GET v1/tasks-odd HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'BAD_REQUEST', 'tasks-odd'],
    ['an unknown HTTP version', 'GET /v1/tasks-odd HTTP/9.9\r\nHost: x\r\n\r\n', 400, 'BAD_REQUEST', 'tasks-odd'],
  ]
  for (const [what, request, status, code, input] of cases) {
    await t.test(what, async (t) => { assertCatalogued(t, await raw(port, request), status, code, input) })
  }
})

tap.test('an absolute-form request line is served as its path, and never echoes the authority', async (t) => {
  const { port } = await listening(t)
  const res = await raw(port, 'GET http://evil.example/v1/tasks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  t.equal(res.status, 401, 'routed to /v1/tasks, which needs credentials')
  t.equal(res.headers['cache-control'], 'no-store', 'an API response')
  t.match(JSON.parse(res.body), { code: 'UNAUTHENTICATED', instance: '/v1/tasks' })
  t.notOk(res.body.includes('evil.example'))
})

/** POSTs `size` bytes on `agent`'s kept-alive connection; resolves with the status, or the socket error. */
async function post (port: number, agent: Agent, path: string, size: number, headers: Record<string, string> = {}): Promise<{ status?: number, headers?: IncomingHttpHeaders, error?: string, socket?: unknown }> {
  return await new Promise((resolve) => {
    const req = httpRequest({ port, host: '127.0.0.1', method: 'POST', path, agent, headers: { 'content-type': 'application/json', 'content-length': size, ...headers } }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, socket: req.socket }))
    })
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }))
    // Written in pieces, as a client streaming a large body does.
    const chunk = Buffer.alloc(64 * 1024, 'x')
    let sent = 0
    const write = (): void => {
      while (sent < size) {
        const piece = chunk.subarray(0, Math.min(chunk.length, size - sent))
        sent += piece.length
        if (!req.write(piece)) { req.once('drain', write); return }
      }
      req.end()
    }
    write()
  })
}

tap.test('an oversized body is answered 413 and the client reads it, on a reused connection, every time', async (t) => {
  const { app, port } = await listening(t)
  const user = await createUser(app)
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const outcomes: Array<number | string> = []
  const sockets = new Set<unknown>()
  for (let i = 0; i < 40; i++) {
    const res = await post(port, agent, '/v1/tasks', 3 * 1024 * 1024, { authorization: `Bearer ${user.accessToken}` })
    outcomes.push(res.status ?? res.error!)
    if (res.socket !== undefined) sockets.add(res.socket)
  }
  t.same(outcomes.filter((o) => o !== 413), [], 'every attempt read a 413, none a reset or broken pipe')
  t.equal(sockets.size, 1, 'one connection served them all')
  const next = await post(port, agent, '/v1/tasks', 2, { authorization: `Bearer ${user.accessToken}` })
  t.equal(next.status, 400, 'the next request is answered (its body is not JSON)')
  t.ok(sockets.has(next.socket), 'on the same connection')
})

tap.test('a body far past the limit is read up to a bound, then the connection is closed', async (t) => {
  const { port } = await listening(t, { BODY_LIMIT: '1024' })
  const size = 256 * 1024 * 1024
  const { accepted, answer } = await new Promise<{ accepted: number, answer: string }>((resolve) => {
    const socket = connect(port, '127.0.0.1')
    let answer = ''
    let accepted = 0
    let done = false
    const finish = (): void => { if (!done) { done = true; socket.destroy(); resolve({ accepted, answer }) } }
    socket.on('data', (d) => { answer += d.toString() })
    socket.on('error', finish)
    socket.on('close', finish)
    socket.write(`POST /v1/auth/signup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`)
    const chunk = Buffer.alloc(256 * 1024, 'x')
    const pump = (): void => {
      while (!done && accepted < size) {
        accepted += chunk.length
        if (!socket.write(chunk)) { socket.once('drain', pump); return }
      }
    }
    pump()
  })
  t.match(answer, /^HTTP\/1.1 413 /, 'the answer came first')
  t.ok(accepted < size / 2, `the server stopped reading after a bound (${Math.round(accepted / 1048576)} MiB of 256 accepted)`)
})

tap.test('a 304 carries no content headers', async (t) => {
  const app = await build(t)
  const user = await createUser(app)
  const headers = { authorization: `Bearer ${user.accessToken}` }
  const created = await app.inject({ method: 'POST', url: '/v1/tasks', headers, payload: { title: 'unchanged' } })
  const id = created.json<{ id: string }>().id
  const res = await app.inject({ method: 'GET', url: `/v1/tasks/${id}`, headers: { ...headers, 'if-none-match': created.headers.etag as string } })
  t.equal(res.statusCode, 304)
  t.equal(res.body, '')
  t.equal(res.headers['content-type'], undefined, 'no Content-Type')
  t.equal(res.headers['content-length'], undefined, 'no Content-Length')
  t.equal(res.headers.etag, created.headers.etag, 'the ETag a 200 would carry')
})
