/**
 * Single sign-on against a real OpenID provider (oidc-provider on a loopback port): the API flow
 * from `GET /v1/auth/oidc/authorize` through the provider's login and consent forms, our callback
 * and `redirect_uri?code=` to the token exchange; the accounts it makes and finds; what it refuses.
 */
import { sql } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import tap from 'tap'
import { createTasksApi } from '../../sdk/src/index.js'
import { replacePassword } from '../../src/repositories/users.js'
import { hashPassword } from '../../src/lib/passwords.js'
import { assertProblem, build, createUser, type T } from '../helper.js'
import { startProvider, signInAtProvider, type TestProvider } from '../oidc-provider.js'
import { rows } from '../web/support.js'
import { bearer, relaxedLimits } from './support.js'

const PUBLIC_URL = 'http://tasks.test'
const CALLBACK = `${PUBLIC_URL}/v1/auth/oidc/callback`
const REDIRECT = 'https://client.example/signed-in'

async function setUp (t: T): Promise<{ app: FastifyInstance, provider: TestProvider }> {
  const provider = await startProvider(t, PUBLIC_URL)
  const app = await build(t, { ...relaxedLimits, ...provider.env, PUBLIC_URL, OIDC_ALLOWED_REDIRECTS: `https://other.example/cb, ${REDIRECT}` })
  return { app, provider }
}

/** Signs `login` in at the provider; where our callback sent the browser. */
async function signIn (app: FastifyInstance, login: string, state = 'client-state'): Promise<URL> {
  const start = await app.inject({ method: 'GET', url: `/v1/auth/oidc/authorize?${new URLSearchParams({ redirect_uri: REDIRECT, state })}` })
  if (start.statusCode !== 302) throw new Error(`authorize answered ${start.statusCode} ${start.body}`)
  const back = await signInAtProvider(start.headers.location!, login, CALLBACK)
  const callback = await app.inject({ method: 'GET', url: `${back.pathname}${back.search}` })
  if (callback.statusCode !== 302) throw new Error(`callback answered ${callback.statusCode} ${callback.body}`)
  return new URL(callback.headers.location!)
}

async function exchange (app: FastifyInstance, code: string) {
  return await app.inject({
    method: 'POST',
    url: '/v1/auth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ grant_type: 'authorization_code', code }).toString(),
  })
}

tap.test('the first sign-in makes an account, the next finds it; its code works once', async (t) => {
  const { app, provider } = await setUp(t)
  provider.users.set('sub-ada', { preferred_username: 'ada lovelace!', email: 'ada@example.com', email_verified: true })

  const start = await app.inject({ method: 'GET', url: `/v1/auth/oidc/authorize?redirect_uri=${encodeURIComponent(REDIRECT)}` })
  t.equal(start.statusCode, 302)
  const authorization = new URL(start.headers.location!)
  t.equal(authorization.origin, provider.issuer)
  t.equal(authorization.searchParams.get('redirect_uri'), CALLBACK, 'the callback is built from PUBLIC_URL')
  t.equal(authorization.searchParams.get('code_challenge_method'), 'S256')
  t.ok(authorization.searchParams.get('state') !== null && authorization.searchParams.get('nonce') !== null)

  const first = await signIn(app, 'sub-ada', 'my-state')
  t.equal(`${first.origin}${first.pathname}`, REDIRECT)
  t.equal(first.searchParams.get('state'), 'my-state', 'the client\'s state comes back')
  const code = first.searchParams.get('code')!
  t.match(code, /^sso_/)
  const pair = await exchange(app, code)
  t.equal(pair.statusCode, 200, pair.body)
  const me = (await app.inject({ method: 'GET', url: '/v1/users/me', headers: bearer(pair.json().access_token) })).json()
  t.match(me, { username: 'adalovelace', email: 'ada@example.com', email_verified: true, mfa_enabled: false })

  const again = assertProblem(t, await exchange(app, code), 400, 'INVALID_GRANT')
  t.equal(again.error, 'invalid_grant', 'a code works once')

  const second = await signIn(app, 'sub-ada')
  const secondPair = (await exchange(app, second.searchParams.get('code')!)).json()
  const meAgain = (await app.inject({ method: 'GET', url: '/v1/users/me', headers: bearer(secondPair.access_token) })).json()
  t.equal(meAgain.id, me.id, 'the second sign-in finds the account')

  const identities = (await app.inject({ method: 'GET', url: '/v1/users/me/identities', headers: bearer(secondPair.access_token) })).json()
  t.match(identities.items, [{ issuer: provider.issuer, subject: 'sub-ada', email: 'ada@example.com' }])
  t.equal(identities.items.length, 1)

  // No password: logging in with one fails as a wrong password does.
  assertProblem(t, await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: me.username, password: 'any password at all' } }), 401, 'INVALID_CREDENTIALS')
})

tap.test('a code is refused after 60 s', async (t) => {
  const { app, provider } = await setUp(t)
  provider.users.set('sub-late', { email: 'late.comer@example.com' })
  const code = (await signIn(app, 'sub-late')).searchParams.get('code')!
  const [lifetime] = await rows<{ seconds: number }>(app, sql`select extract(epoch from expires_at - created_at)::int as seconds from one_time_tokens where purpose = 'oidc_login'`)
  t.equal(lifetime!.seconds, 60)
  await app.db.execute(sql`update one_time_tokens set expires_at = now() - interval '1 second' where purpose = 'oidc_login'`)
  t.equal(assertProblem(t, await exchange(app, code), 400, 'INVALID_GRANT').error, 'invalid_grant')
})

tap.test('accounts are made with a free username and never matched by email', async (t) => {
  const { app, provider } = await setUp(t)
  const local = await createUser(app, 'taken')
  await app.inject({ method: 'PATCH', url: '/v1/users/me', headers: { ...bearer(local.accessToken), 'content-type': 'application/merge-patch+json' }, payload: { email: 'same@example.com' } })
  await app.db.execute(sql`update users set email_verified = true where id = ${local.id}`)
  provider.users.set('sub-same', { preferred_username: local.username, email: 'same@example.com', email_verified: true })
  provider.users.set('sub-nothing', {})

  const pair = (await exchange(app, (await signIn(app, 'sub-same')).searchParams.get('code')!)).json()
  const me = (await app.inject({ method: 'GET', url: '/v1/users/me', headers: bearer(pair.access_token) })).json()
  t.not(me.id, local.id, 'a new account, not the one with the same email')
  t.match(me.username, new RegExp(`^${local.username.slice(0, 26)}[0-9]{6}$`), 'digits make the username free')

  const bare = (await exchange(app, (await signIn(app, 'sub-nothing')).searchParams.get('code')!)).json()
  const bareUser = (await app.inject({ method: 'GET', url: '/v1/users/me', headers: bearer(bare.access_token) })).json()
  t.match(bareUser, { username: /^user([0-9]{6})?$/, email: null, email_verified: false })
})

tap.test('redirect URIs, states and configuration are checked', async (t) => {
  const { app, provider } = await setUp(t)
  for (const query of ['', '?redirect_uri=https%3A%2F%2Fevil.example%2Fsigned-in', `?redirect_uri=${encodeURIComponent(`${REDIRECT}/`)}`]) {
    assertProblem(t, await app.inject({ method: 'GET', url: `/v1/auth/oidc/authorize${query}` }), 400, 'REDIRECT_URI_NOT_ALLOWED')
  }

  provider.users.set('sub-state', {})
  const start = await app.inject({ method: 'GET', url: `/v1/auth/oidc/authorize?redirect_uri=${encodeURIComponent(REDIRECT)}` })
  const back = await signInAtProvider(start.headers.location!, 'sub-state', CALLBACK)
  const tampered = new URL(back)
  tampered.searchParams.set('state', `${back.searchParams.get('state')!}x`)
  assertProblem(t, await app.inject({ method: 'GET', url: `${tampered.pathname}${tampered.search}` }), 400, 'INVALID_OIDC_STATE')
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/auth/oidc/callback?code=abc' }), 400, 'INVALID_OIDC_STATE')
  const done = await app.inject({ method: 'GET', url: `${back.pathname}${back.search}` })
  t.equal(done.statusCode, 302)
  assertProblem(t, await app.inject({ method: 'GET', url: `${back.pathname}${back.search}` }), 400, 'INVALID_OIDC_STATE')

  // The provider's refusal comes back to the client as an RFC 6749 error.
  const denied = await app.inject({ method: 'GET', url: `/v1/auth/oidc/authorize?redirect_uri=${encodeURIComponent(REDIRECT)}&state=s1` })
  const state = new URL(denied.headers.location!).searchParams.get('state')!
  const refused = await app.inject({ method: 'GET', url: `/v1/auth/oidc/callback?${new URLSearchParams({ state, error: 'access_denied', iss: provider.issuer })}` })
  const refusal = new URL(refused.headers.location!)
  t.equal(refusal.searchParams.get('error'), 'access_denied')
  t.equal(refusal.searchParams.get('state'), 's1')
  t.equal(refusal.searchParams.get('code'), null)

  const plain = await build(t, relaxedLimits)
  assertProblem(t, await plain.inject({ method: 'GET', url: `/v1/auth/oidc/authorize?redirect_uri=${encodeURIComponent(REDIRECT)}` }), 404, 'OIDC_NOT_CONFIGURED')

  // Discovery happens at the first sign-in: a provider that does not answer is a 503 then.
  const down = await build(t, { ...relaxedLimits, ...provider.env, OIDC_ISSUER: 'http://127.0.0.1:9', OIDC_ALLOWED_REDIRECTS: REDIRECT })
  const unavailable = await down.inject({ method: 'GET', url: `/v1/auth/oidc/authorize?redirect_uri=${encodeURIComponent(REDIRECT)}` })
  assertProblem(t, unavailable, 503, 'OIDC_PROVIDER_UNAVAILABLE')
  t.equal(unavailable.headers['retry-after'], '30')
})

tap.test('an identity is unlinked unless it is the only way in', async (t) => {
  const { app, provider } = await setUp(t)
  provider.users.set('sub-only', { email: 'only@example.com' })
  const pair = (await exchange(app, (await signIn(app, 'sub-only')).searchParams.get('code')!)).json()
  const auth = bearer(pair.access_token)
  const [identity] = (await app.inject({ method: 'GET', url: '/v1/users/me/identities', headers: auth })).json().items
  assertProblem(t, await app.inject({ method: 'DELETE', url: `/v1/users/me/identities/${identity.id}`, headers: auth }), 409, 'LAST_WAY_IN')

  const other = await createUser(app)
  assertProblem(t, await app.inject({ method: 'DELETE', url: `/v1/users/me/identities/${identity.id}`, headers: bearer(other.accessToken) }), 404, 'IDENTITY_NOT_FOUND')
  assertProblem(t, await app.inject({ method: 'DELETE', url: '/v1/users/me/identities/nope', headers: auth }), 400, 'VALIDATION_FAILED')
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/users/me/identities' }), 401, 'UNAUTHENTICATED')

  // With a password (as a reset sets it) the identity may go; the access token dies with the old password state.
  const me = (await app.inject({ method: 'GET', url: '/v1/users/me', headers: auth })).json()
  await app.db.transaction(async (tx) => { await replacePassword(tx, me.id, await hashPassword('a brand new password')) })
  app.forgetAuthState(me.id)
  const login = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: me.username, password: 'a brand new password' } })
  t.equal(login.statusCode, 200)
  const fresh = bearer(login.json().access_token)
  t.equal((await app.inject({ method: 'DELETE', url: `/v1/users/me/identities/${identity.id}`, headers: fresh })).statusCode, 204)
  t.same((await app.inject({ method: 'GET', url: '/v1/users/me/identities', headers: fresh })).json().items, [])
})

tap.test('the SDK finishes a sign-in with logInWithCode', async (t) => {
  const { app, provider } = await setUp(t)
  provider.users.set('sub-sdk', { preferred_username: 'sdk_user' })
  const api = createTasksApi({
    baseUrl: PUBLIC_URL,
    // The SDK's requests, answered by the app in this process.
    fetch: async (request) => {
      const url = new URL(request.url)
      const res = await app.inject({ method: request.method as 'GET', url: `${url.pathname}${url.search}`, headers: Object.fromEntries(request.headers), payload: await request.text() })
      const headers = new Headers(Object.entries(res.headers).map(([name, value]) => [name, String(value)]))
      return new Response(res.statusCode === 204 ? null : res.rawPayload, { status: res.statusCode, headers })
    },
  })
  const code = (await signIn(app, 'sub-sdk')).searchParams.get('code')!
  const pair = await api.logInWithCode(code)
  t.equal(api.credentials && 'accessToken' in api.credentials ? api.credentials.accessToken : undefined, pair.access_token)
  const me = await api.GET('/v1/users/me')
  t.equal(me.data?.username, 'sdk_user')
  await t.rejects(api.logInWithCode(code), { code: 'INVALID_GRANT' })
})
