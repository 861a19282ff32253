import { mkdtemp, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tap from 'tap'
import { embeddedDataDir } from '../helper.js'
import { productionBundle, runServerToExit, startServer } from '../server-process.js'

tap.test('embedded database: data created through the API survives a restart', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'tasks-api-data-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const env = { DATA_DIR: dataDir }
  const credentials = { username: 'persistent', password: 'persistent password' }

  const first = await startServer(env)
  const signup = await fetch(`${first.url}/v1/auth/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(credentials) })
  t.equal(signup.status, 201)
  t.equal(await first.stop(), 0, 'exits 0 on SIGTERM')
  t.match(first.output(), /generated a development secret/, 'warns about the generated JWT secret')

  const second = await startServer(env)
  t.teardown(() => second.stop())
  const login = await fetch(`${second.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(credentials) })
  t.equal(login.status, 200, 'the account is still there')
  const { access_token: token } = await login.json() as { access_token: string }
  const me = await fetch(`${second.url}/v1/users/me`, { headers: { authorization: `Bearer ${token}` } })
  t.equal(me.status, 200)
  t.match(second.output(), /using the development secret/, 'reuses the kept secret')
})

tap.test('the production bundle serves the API, its explorer and its pages', async (t) => {
  // Each of these loads a package the bundle leaves outside: the embedded database, the password
  // hasher, the explorer's assets, the page templates. (A first start on an empty DATA_DIR is the
  // test above; here the database is a migrated copy.)
  const server = await startServer({ DATA_DIR: await embeddedDataDir(t), LOG_LEVEL: 'warn' }, await productionBundle(t))
  t.teardown(() => server.stop())
  const credentials = { username: 'bundled', password: 'bundled password' }
  const signup = await fetch(`${server.url}/v1/auth/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(credentials) })
  t.equal(signup.status, 201, 'signup on the embedded database')
  const login = await fetch(`${server.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(credentials) })
  t.equal(login.status, 200, 'login verifies the password hash')
  const css = await fetch(`${server.url}/docs/static/swagger-ui.css`)
  t.equal(css.status, 200, 'the explorer\'s assets')
  t.match(css.headers.get('content-type'), /text\/css/)
  const page = await fetch(`${server.url}/app/login`)
  t.equal(page.status, 200, 'a page rendered from its template')
  t.match(await page.text(), /<form/)
})

tap.test('a bad configuration stops the process with one message naming every problem', async (t) => {
  const { code, output } = await runServerToExit({ PORT: 'eighty', NODE_ENV: 'production', LOG_LEVEL: 'loud' })
  t.equal(code, 1)
  t.match(output, /Invalid configuration/)
  t.match(output, /PORT="eighty"/)
  t.match(output, /LOG_LEVEL="loud"/)
})

tap.test('a client that trickles its request is cut off with 408', async (t) => {
  const server = await startServer({ DATA_DIR: await embeddedDataDir(t), REQUEST_TIMEOUT_MS: '1500' })
  t.teardown(() => server.stop())
  const { port } = new URL(server.url)
  const socket = connect(Number(port), '127.0.0.1')
  let received = ''
  socket.on('data', (d) => { received += d.toString() })
  socket.write('POST /v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"user')
  const started = Date.now()
  await new Promise((resolve) => socket.once('close', resolve))
  t.match(received, /^HTTP\/1\.1 408/, 'answered 408')
  t.ok(Date.now() - started < 6000, 'within seconds')
})
