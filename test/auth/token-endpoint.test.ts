import tap from 'tap'
import type { FastifyInstance } from 'fastify'
import { assertProblem, createUser } from '../helper.js'
import { bearer, buildProbe } from './support.js'

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString()
const formHeaders = { 'content-type': 'application/x-www-form-urlencoded' }

async function token (app: FastifyInstance, fields: Record<string, string>) {
  return await app.inject({ method: 'POST', url: '/v1/auth/token', headers: formHeaders, payload: form(fields) })
}

tap.test('the OAuth2 password flow declared in the OpenAPI document works as Swagger UI uses it', async (t) => {
  const { app } = await buildProbe(t)
  const user = await createUser(app)
  const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json()
  const flow = document.components.securitySchemes.oauth2.flows.password
  t.same(Object.keys(flow.scopes).sort(), ['admin', 'tasks:read', 'tasks:write'])
  // Resolved as a browser does: against the server URL, itself relative to the document's URL.
  const base = new URL(document.servers[0].url, 'http://docs.example/openapi.json')
  const tokenUrl = new URL(flow.tokenUrl, base)
  t.equal(tokenUrl.origin, 'http://docs.example', 'the token URL is on the server that serves the document')

  // What Swagger UI's Authorize dialog sends: a form, client credentials (empty) in a Basic header.
  const res = await app.inject({
    method: 'POST',
    url: tokenUrl.pathname,
    headers: { ...formHeaders, authorization: 'Basic Og==', accept: 'application/json, text/plain, */*' },
    payload: form({ grant_type: 'password', username: user.username, password: user.password, scope: 'tasks:read tasks:write' }),
  })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  t.equal(res.headers['cache-control'], 'no-store')
  t.equal(res.headers.pragma, 'no-cache')
  const pair = res.json()
  t.match(pair, { token_type: 'Bearer', expires_in: 900, access_token: String, refresh_token: String, scope: 'tasks:read tasks:write' })

  // "Try it out" then sends the access token to an operation that lists the oauth2 scheme.
  const me = document.paths['/v1/users/me'].get
  t.ok(me.security.some((s: Record<string, unknown>) => 'oauth2' in s))
  const call = await app.inject({ method: 'GET', url: '/v1/users/me', headers: bearer(pair.access_token) })
  t.equal(call.statusCode, 200)
  t.equal(call.json().id, user.id)

  // The refresh URL takes grant_type=refresh_token, with client_id in the body this time.
  t.equal(new URL(flow.refreshUrl, base).pathname, tokenUrl.pathname)
  const refreshed = await token(app, { grant_type: 'refresh_token', refresh_token: pair.refresh_token, client_id: 'swagger-ui' })
  t.equal(refreshed.statusCode, 200)
  t.not(refreshed.json().refresh_token, pair.refresh_token)
})

tap.test('token endpoint errors are problem+json carrying RFC 6749 `error`', async (t) => {
  const { app } = await buildProbe(t)
  const user = await createUser(app)
  const cases: Array<[string, Record<string, string>, number, string, string]> = [
    ['wrong password', { grant_type: 'password', username: user.username, password: 'wrong password!' }, 400, 'INVALID_GRANT', 'invalid_grant'],
    ['unknown user', { grant_type: 'password', username: 'nobody_here', password: 'whatever123' }, 400, 'INVALID_GRANT', 'invalid_grant'],
    ['unknown refresh token', { grant_type: 'refresh_token', refresh_token: 'rt_nope' }, 400, 'INVALID_GRANT', 'invalid_grant'],
    ['an access token as refresh token', { grant_type: 'refresh_token', refresh_token: user.accessToken }, 400, 'INVALID_GRANT', 'invalid_grant'],
    ['unsupported grant', { grant_type: 'client_credentials' }, 400, 'UNSUPPORTED_GRANT_TYPE', 'unsupported_grant_type'],
    ['missing password', { grant_type: 'password', username: user.username }, 400, 'VALIDATION_FAILED', 'invalid_request'],
    ['empty password (same as omitted)', { grant_type: 'password', username: user.username, password: '' }, 400, 'VALIDATION_FAILED', 'invalid_request'],
    ['missing grant_type', { username: user.username }, 400, 'VALIDATION_FAILED', 'invalid_request'],
    ['unknown scope', { grant_type: 'password', username: user.username, password: user.password, scope: 'root' }, 400, 'INVALID_SCOPE', 'invalid_scope'],
    ['oversized password', { grant_type: 'password', username: user.username, password: 'x'.repeat(129) }, 400, 'VALIDATION_FAILED', 'invalid_request'],
  ]
  for (const [name, fields, status, code, error] of cases) {
    const res = await token(app, fields)
    t.test(name, async (t) => {
      const body = assertProblem(t, res, status, code)
      t.equal(body.error, error)
    })
  }
  const repeated = await app.inject({ method: 'POST', url: '/v1/auth/token', headers: formHeaders, payload: 'grant_type=password&grant_type=refresh_token' })
  t.equal(assertProblem(t, repeated, 400, 'VALIDATION_FAILED').error, 'invalid_request', 'a repeated parameter is refused')
  const json = await app.inject({ method: 'POST', url: '/v1/auth/token', payload: { grant_type: 'password', username: user.username, password: user.password } })
  t.equal(assertProblem(t, json, 415, 'UNSUPPORTED_MEDIA_TYPE').error, 'invalid_request', 'JSON is not the token endpoint\'s format')
})

tap.test('refresh-token reuse through the token endpoint revokes the family too', async (t) => {
  const { app } = await buildProbe(t)
  const user = await createUser(app)
  const next = (await token(app, { grant_type: 'refresh_token', refresh_token: user.refreshToken })).json().refresh_token as string
  t.equal(assertProblem(t, await token(app, { grant_type: 'refresh_token', refresh_token: user.refreshToken }), 400, 'INVALID_GRANT').error, 'invalid_grant')
  assertProblem(t, await token(app, { grant_type: 'refresh_token', refresh_token: next }), 400, 'INVALID_GRANT')
})

tap.test('other JSON routes do not accept form bodies', async (t) => {
  const { app } = await buildProbe(t)
  const res = await app.inject({ method: 'POST', url: '/v1/auth/login', headers: formHeaders, payload: form({ username: 'a', password: 'b' }) })
  assertProblem(t, res, 415, 'UNSUPPORTED_MEDIA_TYPE')
  t.equal(res.json().error, undefined, 'and only the token endpoint speaks RFC 6749')
})
