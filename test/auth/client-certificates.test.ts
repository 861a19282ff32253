/**
 * API keys bound to a client certificate, over real TLS connections to the server's own HTTPS
 * listener (TLS_CERT, TLS_KEY, TLS_CLIENT_CA), and behind a proxy that forwards the fingerprint. The
 * CA and certificates are made here with openssl.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import tap from 'tap'
import { createTasksApi } from '../../sdk/src/index.js'
import { loadConfig } from '../../src/config.js'
import { build, createUser } from '../helper.js'

const openssl = async (...args: string[]) => await promisify(execFile)('openssl', args)

interface Pem { cert: Buffer, key: Buffer, sha256: string }

/** A CA, a server certificate for 127.0.0.1, two clients it signs and one it does not. */
async function makeCertificates (dir: string) {
  const file = (name: string) => join(dir, name)
  const subject = async (name: string, cn: string, signer?: string, extensions?: string) => {
    await openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', file(`${name}.key`), '-subj', `/CN=${cn}`, '-out', file(`${name}.csr`))
    if (signer === undefined) {
      await openssl('x509', '-req', '-in', file(`${name}.csr`), '-signkey', file(`${name}.key`), '-days', '2', '-out', file(`${name}.pem`),
        ...(extensions === undefined ? [] : ['-extfile', extensions]))
    } else {
      await openssl('x509', '-req', '-in', file(`${name}.csr`), '-CA', file(`${signer}.pem`), '-CAkey', file(`${signer}.key`), '-CAcreateserial', '-days', '2', '-out', file(`${name}.pem`),
        ...(extensions === undefined ? [] : ['-extfile', extensions]))
    }
    const { stdout } = await openssl('x509', '-in', file(`${name}.pem`), '-noout', '-fingerprint', '-sha256')
    return { cert: await readFile(file(`${name}.pem`)), key: await readFile(file(`${name}.key`)), sha256: stdout.trim().split('=')[1]! }
  }
  await writeFile(file('ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n')
  await writeFile(file('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n')
  await writeFile(file('client.ext'), 'extendedKeyUsage=clientAuth\n')
  const ca = await subject('ca', 'Test client CA', undefined, file('ca.ext'))
  const server = await subject('server', 'localhost', 'ca', file('server.ext'))
  const alice = await subject('alice', 'alice-integration', 'ca', file('client.ext'))
  const bob = await subject('bob', 'bob-integration', 'ca', file('client.ext'))
  const stranger = await subject('stranger', 'alice-integration', undefined, file('client.ext'))
  return { files: { ca: file('ca.pem'), cert: file('server.pem'), key: file('server.key') }, ca, server, alice, bob, stranger }
}

/** GET over TLS, trusting the test CA, presenting `client` when given; the status. */
async function get (port: number, path: string, headers: Record<string, string>, ca: Buffer, client?: Pem): Promise<number> {
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, ca, ...(client === undefined ? {} : { cert: client.cert, key: client.key }), agent: false }, (res) => {
      res.resume()
      res.on('end', () => { resolve(res.statusCode ?? 0) })
    })
    req.on('error', reject)
    req.end()
  })
}

tap.test('a key bound to a certificate works only on a connection that presents it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tasks-api-certs-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const certs = await makeCertificates(dir)
  const app = await build(t, { TLS_CERT: certs.files.cert, TLS_KEY: certs.files.key, TLS_CLIENT_CA: certs.files.ca })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const user = await createUser(app, 'certs')
  const keyFor = async (body: object) => {
    const res = await app.inject({ method: 'POST', url: '/v1/api-keys', headers: { authorization: `Bearer ${user.accessToken}` }, payload: { name: 'integration', scopes: ['tasks:read'], ...body } })
    t.equal(res.statusCode, 201)
    return res.json<{ key: string, client_cert_sha256: string | null }>()
  }
  const bound = await keyFor({ client_cert_sha256: certs.alice.sha256, scopes: ['tasks:read', 'tasks:write'] })
  t.equal(bound.client_cert_sha256, certs.alice.sha256.replaceAll(':', '').toLowerCase(), 'stored as lowercase hex')
  const plain = await keyFor({})
  t.equal(plain.client_cert_sha256, null)
  const tasks = async (key: string, client?: Pem) => await get(port, '/v1/tasks', { 'x-api-key': key }, certs.ca.cert, client)

  t.equal(await tasks(bound.key, certs.alice), 200, 'with its certificate')
  t.equal(await tasks(bound.key), 401, 'without a certificate: refused like an unknown key')
  t.equal(await tasks(bound.key, certs.bob), 401, 'with another certificate of the same CA')
  t.equal(await tasks(bound.key, certs.stranger), 401, 'with a certificate the CA did not sign')
  t.equal(await tasks(plain.key), 200, 'an unbound key needs no certificate')
  t.equal(await tasks(plain.key, certs.bob), 200, 'and works with one')
  t.equal(await get(port, '/v1/users/me', { authorization: `Bearer ${user.accessToken}` }, certs.ca.cert), 200, 'tokens need no certificate')
  t.equal(await get(port, '/v1/tasks', { 'x-api-key': bound.key, 'x-client-cert-sha256': certs.alice.sha256 }, certs.ca.cert), 401, 'without TRUST_PROXY a forwarded fingerprint counts for nothing')

  // The SDK presents a certificate through its own undici Agent.
  const sdk = (client: Pem) => createTasksApi({ baseUrl: `https://127.0.0.1:${port}`, credentials: { apiKey: bound.key }, clientCertificate: { cert: client.cert, key: client.key, ca: certs.ca.cert } })
  const listed = await sdk(certs.alice).GET('/v1/tasks')
  t.equal(listed.response.status, 200, 'the SDK with the bound certificate')
  t.equal((await sdk(certs.bob).GET('/v1/tasks')).response.status, 401, 'the SDK with another one')
  const created = await sdk(certs.alice).POST('/v1/tasks', { body: { title: 'over mutual TLS' } })
  t.equal(created.response.status, 201)
  t.equal(created.data?.title, 'over mutual TLS', 'a body goes over too')

  const refused = await app.inject({ method: 'POST', url: '/v1/api-keys', headers: { authorization: `Bearer ${user.accessToken}` }, payload: { name: 'x', scopes: ['tasks:read'], client_cert_sha256: 'not a fingerprint' } })
  t.equal(refused.statusCode, 400)
})

tap.test('behind a trusted proxy, the fingerprint it forwards is the certificate', async (t) => {
  const app = await build(t, { TRUST_PROXY: 'true' })
  const user = await createUser(app, 'proxied')
  const sha256 = 'AB:'.repeat(31) + 'CD'
  const key = (await app.inject({ method: 'POST', url: '/v1/api-keys', headers: { authorization: `Bearer ${user.accessToken}` }, payload: { name: 'behind caddy', scopes: ['tasks:read'], client_cert_sha256: sha256 } })).json<{ key: string }>().key
  const status = async (headers: Record<string, string>) => (await app.inject({ method: 'GET', url: '/v1/tasks', headers: { 'x-api-key': key, ...headers } })).statusCode
  t.equal(await status({ 'x-client-cert-sha256': sha256.replaceAll(':', '').toLowerCase() }), 200)
  t.equal(await status({ 'x-client-cert-sha256': 'ef'.repeat(32) }), 401, 'another certificate')
  t.equal(await status({}), 401, 'none forwarded')
})

tap.test('TLS settings are checked at start', async (t) => {
  t.throws(() => loadConfig({ NODE_ENV: 'test', JWT_SECRET: 'x'.repeat(40), TLS_CERT: '/x.pem' }), /TLS_CERT and TLS_KEY: set both or neither/)
  t.throws(() => loadConfig({ NODE_ENV: 'test', JWT_SECRET: 'x'.repeat(40), TLS_CLIENT_CA: '/ca.pem' }), /TLS_CLIENT_CA: needs TLS_CERT/)
})
