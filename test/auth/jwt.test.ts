import { createHmac, createSign, generateKeyPairSync } from 'node:crypto'
import tap from 'tap'
import { assertProblem, createUser, JWT_SECRET } from '../helper.js'
import { bearer, buildProbe, createAdmin } from './support.js'

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

function hmac (alg: 'sha256' | 'sha512', input: string, key: string | Buffer): string {
  return createHmac(alg, key).update(input).digest('base64url')
}

/** A token with any header and claims, signed as `sign` says. */
function forge (header: Record<string, unknown>, claims: Record<string, unknown>, sign: (input: string) => string): string {
  const input = `${b64(header)}.${b64(claims)}`
  return `${input}.${sign(input)}`
}
const hs256 = (input: string) => hmac('sha256', input, JWT_SECRET)

function claimsOf (token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>
}

tap.test('the JWT attack matrix: every forged, altered or stale token is a 401 invalid_token', async (t) => {
  const { app } = await buildProbe(t)
  const user = await createUser(app)
  const valid = claimsOf(user.accessToken)
  const now = Math.floor(Date.now() / 1000)
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const [h, p, s] = user.accessToken.split('.') as [string, string, string]

  const cases: Record<string, string> = {
    'alg none': forge({ alg: 'none', typ: 'JWT' }, valid, () => ''),
    'alg none with the original signature': `${b64({ alg: 'none', typ: 'JWT' })}.${p}.${s}`,
    'HS512 with the same secret': forge({ alg: 'HS512', typ: 'JWT' }, valid, (i) => hmac('sha512', i, JWT_SECRET)),
    'RS256 signed with an attacker key': forge({ alg: 'RS256', typ: 'JWT' }, valid, (i) => createSign('RSA-SHA256').update(i).sign(privateKey, 'base64url')),
    'HS256 keyed with an RSA public key (RS/HS confusion)': forge({ alg: 'HS256', typ: 'JWT' }, valid, (i) => hmac('sha256', i, publicPem)),
    'tampered payload (role admin)': `${h}.${b64({ ...valid, role: 'admin', scope: 'tasks:read tasks:write admin' })}.${s}`,
    'malformed signature': `${h}.${p}.${'A'.repeat(10)}`,
    'truncated token': `${h}.${p}`,
    expired: forge({ alg: 'HS256', typ: 'JWT' }, { ...valid, iat: now - 3600, exp: now - 60 }, hs256),
    'nbf in the future': forge({ alg: 'HS256', typ: 'JWT' }, { ...valid, nbf: now + 3600 }, hs256),
    'exp as a string': forge({ alg: 'HS256', typ: 'JWT' }, { ...valid, exp: String(now + 600) }, hs256),
    'wrong issuer': forge({ alg: 'HS256', typ: 'JWT' }, { ...valid, iss: 'someone-else' }, hs256),
    'wrong audience': forge({ alg: 'HS256', typ: 'JWT' }, { ...valid, aud: 'another-api' }, hs256),
    'no exp': forge({ alg: 'HS256', typ: 'JWT' }, { ...valid, exp: undefined }, hs256),
    'no iat': forge({ alg: 'HS256', typ: 'JWT' }, { ...valid, iat: undefined }, hs256),
    'no sub': forge({ alg: 'HS256', typ: 'JWT' }, { ...valid, sub: undefined }, hs256),
    'sub that is not a user id': forge({ alg: 'HS256', typ: 'JWT' }, { ...valid, sub: 'not-a-uuid' }, hs256),
    'sub of nobody': forge({ alg: 'HS256', typ: 'JWT' }, { ...valid, sub: '00000000-0000-4000-8000-000000000000' }, hs256),
    'no password stamp': forge({ alg: 'HS256', typ: 'JWT' }, { ...valid, pwd_at: undefined }, hs256),
    'a refresh token': user.refreshToken,
  }
  for (const [name, token] of Object.entries(cases)) {
    const res = await app.inject({ method: 'GET', url: '/v1/probe/read', headers: bearer(token) })
    t.test(name, async (t) => {
      assertProblem(t, res, 401, 'INVALID_TOKEN')
      t.match(res.headers['www-authenticate'], /^Bearer .*error="invalid_(token|request)"/)
    })
  }
  const ok = await app.inject({ method: 'GET', url: '/v1/probe/read', headers: bearer(forge({ alg: 'HS256', typ: 'JWT' }, valid, hs256)) })
  t.equal(ok.statusCode, 200, 'the same claims, properly signed, are accepted (the matrix tests the attacks, not the setup)')
})

tap.test('a token accepted before (and so remembered) is refused once it expires', async (t) => {
  const { app } = await buildProbe(t)
  const user = await createUser(app)
  const exp = Math.floor(Date.now() / 1000) + 2
  const token = forge({ alg: 'HS256', typ: 'JWT' }, { ...claimsOf(user.accessToken), exp }, hs256)
  t.equal((await app.inject({ method: 'GET', url: '/v1/probe/read', headers: bearer(token) })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/v1/probe/read', headers: bearer(token) })).statusCode, 200)
  await new Promise((resolve) => setTimeout(resolve, exp * 1000 - Date.now() + 50))
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/probe/read', headers: bearer(token) }), 401, 'INVALID_TOKEN')
})

tap.test('an access token carries sub, iat, exp, iss, aud, jti, role and scope, and lives ACCESS_TOKEN_TTL', async (t) => {
  const { app } = await buildProbe(t, { ACCESS_TOKEN_TTL: '120' })
  const user = await createUser(app)
  const claims = claimsOf(user.accessToken)
  t.match(claims, { sub: user.id, iss: 'tasks-api', aud: 'tasks-api', role: 'user', scope: 'tasks:read tasks:write', jti: String })
  t.equal((claims.exp as number) - (claims.iat as number), 120)
  t.same(JSON.parse(Buffer.from(user.accessToken.split('.')[0]!, 'base64url').toString()), { alg: 'HS256', typ: 'JWT' })
})

tap.test('missing and malformed Authorization headers are 401 with a challenge', async (t) => {
  const { app } = await buildProbe(t)
  const none = await app.inject({ method: 'GET', url: '/v1/probe/read' })
  assertProblem(t, none, 401, 'UNAUTHENTICATED')
  t.equal(none.headers['www-authenticate'], 'Bearer realm="tasks-api"')
  const basic = await app.inject({ method: 'GET', url: '/v1/probe/read', headers: { authorization: 'Basic dXNlcjpwYXNz' } })
  assertProblem(t, basic, 401, 'INVALID_TOKEN')
  t.match(basic.headers['www-authenticate'], /error="invalid_request"/)
})

tap.test('tokens of a deleted or disabled user stop working', async (t) => {
  const { app } = await buildProbe(t)
  const admin = await createAdmin(app)
  const disabled = await createUser(app)
  const deleted = await createUser(app)
  for (const u of [disabled, deleted]) {
    t.equal((await app.inject({ method: 'GET', url: '/v1/probe/read', headers: bearer(u.accessToken) })).statusCode, 200, 'works before')
  }
  t.equal((await app.inject({ method: 'PATCH', url: `/v1/users/${disabled.id}`, headers: bearer(admin.accessToken), payload: { disabled: true } })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: `/v1/users/${deleted.id}`, headers: bearer(admin.accessToken) })).statusCode, 204)
  for (const u of [disabled, deleted]) {
    const res = await app.inject({ method: 'GET', url: '/v1/probe/read', headers: bearer(u.accessToken) })
    assertProblem(t, res, 401, 'INVALID_TOKEN')
    t.match(res.headers['www-authenticate'], /error="invalid_token"/)
  }
})

tap.test('a token issued before a password change is refused; one issued after works', async (t) => {
  const { app } = await buildProbe(t)
  const user = await createUser(app)
  const change = await app.inject({
    method: 'POST', url: '/v1/users/me/password', headers: bearer(user.accessToken),
    payload: { current_password: user.password, new_password: 'a brand new passphrase' },
  })
  t.equal(change.statusCode, 204)
  const old = await app.inject({ method: 'GET', url: '/v1/probe/read', headers: bearer(user.accessToken) })
  assertProblem(t, old, 401, 'INVALID_TOKEN')
  t.match(old.headers['www-authenticate'], /error="invalid_token"/)
  const relogin = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: user.username, password: 'a brand new passphrase' } })
  t.equal(relogin.statusCode, 200)
  const fresh = await app.inject({ method: 'GET', url: '/v1/probe/read', headers: bearer(relogin.json().access_token) })
  t.equal(fresh.statusCode, 200, 'a login in the same second as the change is not caught by it')
})
