/**
 * Access tokens signed with asymmetric keys (JWT_SIGNING_KEYS): EdDSA and ES256 with `kid`, the JWK
 * set that publishes their public halves, rotation, the forgeries that must be refused, and the
 * security guide's `jose` snippet run as another service would run it.
 */
import { execFile } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import tap from 'tap'
import { createSigner } from 'fast-jwt'
import { loadConfig, ConfigError } from '../../src/config.js'
import { projectRoot } from '../../src/lib/project-root.js'
import { parseSigningKeys } from '../../src/lib/signing-keys.js'
import { build, createUser, JWT_SECRET } from '../helper.js'

const run = promisify(execFile)

/** A private JWK with a `kid`, as an operator would put it in JWT_SIGNING_KEYS. */
function privateJwk (kind: 'ed25519' | 'p256', kid: string): Record<string, unknown> {
  const { privateKey } = kind === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return { ...privateKey.export({ format: 'jwk' }), kid }
}
const keySet = (...keys: Array<Record<string, unknown>>) => JSON.stringify({ keys })
const headerOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { alg: string, kid?: string }

const k1 = privateJwk('ed25519', 'k1')
const k2 = privateJwk('p256', 'k2')
const stranger = privateJwk('ed25519', 'k3')

tap.test('EdDSA and ES256 tokens carry their kid, and the JWK set publishes the public keys only', async (t) => {
  const app = await build(t, { JWT_SIGNING_KEYS: keySet(k1, k2) })
  const user = await createUser(app, 'jwks')
  t.same(headerOf(user.accessToken), { alg: 'EdDSA', typ: 'JWT', kid: 'k1' }, 'signed by the first key')
  t.equal((await app.inject({ method: 'GET', url: '/v1/users/me', headers: { authorization: `Bearer ${user.accessToken}` } })).statusCode, 200)

  const res = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['cache-control'], /^public, max-age=\d+$/)
  const { keys } = res.json<{ keys: Array<Record<string, unknown>> }>()
  t.same(keys.map((k) => [k.kid, k.alg, k.use, k.kty, k.crv]), [['k1', 'EdDSA', 'sig', 'OKP', 'Ed25519'], ['k2', 'ES256', 'sig', 'EC', 'P-256']])
  t.ok(keys.every((k) => k.d === undefined), 'no private part')

  const es256 = await build(t, { JWT_SIGNING_KEYS: keySet(k2) })
  const other = await createUser(es256, 'es256')
  t.same(headerOf(other.accessToken), { alg: 'ES256', typ: 'JWT', kid: 'k2' })
  t.equal((await es256.inject({ method: 'GET', url: '/v1/users/me', headers: { authorization: `Bearer ${other.accessToken}` } })).statusCode, 200)
})

tap.test('HS256 stays the default, and then there is no key set to publish', async (t) => {
  const app = await build(t)
  const user = await createUser(app, 'hs256')
  t.same(headerOf(user.accessToken), { alg: 'HS256', typ: 'JWT' })
  const res = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  t.equal(res.statusCode, 404)
  t.equal(res.json().code, 'NOT_FOUND')
})

tap.test('rotation: tokens of a key still listed keep working; a dropped key\'s tokens fail', async (t) => {
  const before = await build(t, { JWT_SIGNING_KEYS: keySet(k1) })
  const user = await createUser(before, 'rotate')
  const me = async (app: typeof before, token: string) => (await app.inject({ method: 'GET', url: '/v1/users/me', headers: { authorization: `Bearer ${token}` } })).statusCode

  const added = await build(t, { JWT_SIGNING_KEYS: keySet(k1, k2) })
  t.equal(await me(added, user.accessToken), 200, 'step 1: the new key is published second; old tokens work')
  const moved = await build(t, { JWT_SIGNING_KEYS: keySet(k2, k1) })
  const login = await moved.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: user.username, password: user.password } })
  const fresh = login.json<{ access_token: string }>().access_token
  t.equal(headerOf(fresh).kid, 'k2', 'step 2: the new key signs')
  t.equal(await me(moved, user.accessToken), 200, 'and the old key still verifies')
  const dropped = await build(t, { JWT_SIGNING_KEYS: keySet(k2) })
  t.equal(await me(dropped, fresh), 200, 'step 3: after ACCESS_TOKEN_TTL the old key goes')
  t.equal(await me(dropped, user.accessToken), 401, 'a token of the dropped key is refused')
})

tap.test('forgeries are refused: unknown kid, another algorithm, none, HS256 keyed with the public key', async (t) => {
  const app = await build(t, { JWT_SIGNING_KEYS: keySet(k1, k2) })
  const user = await createUser(app, 'forged')
  const claims = JSON.parse(Buffer.from(user.accessToken.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>
  const status = async (token: string) => (await app.inject({ method: 'GET', url: '/v1/users/me', headers: { authorization: `Bearer ${token}` } })).statusCode
  const [key1, key2, key3] = [k1, k2, stranger].map((k) => parseSigningKeys(keySet(k))[0]!)
  const sign = (key: string, algorithm: string, kid: string | undefined) => createSigner({ key, algorithm: algorithm as never, ...(kid === undefined ? {} : { kid }) })(claims)

  t.equal(await status(sign(key1!.privatePem, 'EdDSA', 'k1')), 200, 'the control: a token signed as the service does it')
  t.equal(await status(sign(key3!.privatePem, 'EdDSA', 'k3')), 401, 'an unknown kid')
  t.equal(await status(sign(key3!.privatePem, 'EdDSA', undefined)), 401, 'no kid')
  t.equal(await status(sign(key2!.privatePem, 'ES256', 'k1')), 401, 'ES256 under the kid of the Ed25519 key')
  t.equal(await status(sign(key1!.publicPem, 'HS256', 'k1')), 401, 'HS256 keyed with the public key')
  t.equal(await status(sign(JWT_SECRET, 'HS256', undefined)), 401, 'HS256 with the shared secret, once keys are configured')
  const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT', kid: 'k1' })).toString('base64url')}.${user.accessToken.split('.')[1]!}.`
  t.equal(await status(none), 401, 'alg none')
})

tap.test('JWT_SIGNING_KEYS is checked at start, and its content never repeated', async (t) => {
  const refuse = (value: string, message: RegExp) => {
    const err = (() => { try { loadConfig({ NODE_ENV: 'test', JWT_SECRET, JWT_SIGNING_KEYS: value }) } catch (e) { return e } })()
    t.ok(err instanceof ConfigError, value.slice(0, 20))
    t.match((err as Error).message, message)
    t.notOk((err as Error).message.includes(String(k1.d)), 'no key material in the message')
  }
  refuse('not json', /JSON Web Key set/)
  refuse(keySet({ ...k1, kid: undefined }), /no "kid"/)
  refuse(keySet(k1, { ...k1 }), /appears twice/)
  refuse(keySet({ ...k1, d: undefined }), /not a private key/)
  refuse(keySet({ kty: 'RSA', kid: 'r', d: 'x' }), /neither Ed25519/)
})

tap.test('the security guide\'s jose snippet verifies a token through the JWK set URL', async (t) => {
  const app = await build(t, { JWT_SIGNING_KEYS: keySet(k1) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const user = await createUser(app, 'jose')
  const guide = await readFile(join(projectRoot, 'docs', 'security.md'), 'utf8')
  const snippet = /```js\n(\/\/ verify-token\.mjs[\s\S]*?)```/.exec(guide)?.[1]
  t.ok(snippet, 'the guide has the snippet')
  // Beside node_modules, so that `jose` resolves as it would in the other service's project.
  const file = join(projectRoot, `verify-token-${randomBytes(4).toString('hex')}.mjs`)
  t.teardown(() => rm(file, { force: true }))
  await writeFile(file, snippet!)
  const { stdout } = await run(process.execPath, [file, user.accessToken], { env: { ...process.env, TASKS_API_URL: `http://127.0.0.1:${port}` } })
  t.match(stdout, user.id, 'it prints the verified subject')
  const forged = await run(process.execPath, [file, `${user.accessToken.slice(0, -4)}AAAA`], { env: { ...process.env, TASKS_API_URL: `http://127.0.0.1:${port}` } }).then(() => 'accepted', () => 'refused')
  t.equal(forged, 'refused', 'and it refuses a token whose signature was changed')
})
