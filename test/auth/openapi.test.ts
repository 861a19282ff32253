import tap from 'tap'
import { generateOpenApi } from '../../scripts/openapi.js'
import { assertProblem, createUser } from '../helper.js'
import { bearer, buildProbe } from './support.js'

interface Operation { security?: Array<Record<string, string[]>>, responses: Record<string, { headers?: Record<string, unknown> }>, description?: string }

tap.test('openapi.json documents the three security schemes and every protected operation\'s requirement with scopes', async (t) => {
  const document = JSON.parse(await generateOpenApi()) as { paths: Record<string, Record<string, Operation>>, components: { securitySchemes: Record<string, Record<string, unknown>> } }
  const schemes = document.components.securitySchemes
  t.match(schemes.bearerAuth, { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
  t.match(schemes.oauth2, { type: 'oauth2', flows: { password: { tokenUrl: '/v1/auth/token' } } })
  t.match(schemes.apiKey, { type: 'apiKey', in: 'header', name: 'X-API-Key' })

  const op = (method: string, path: string) => document.paths[path]![method]!
  const requirement = (o: Operation) => Object.fromEntries((o.security ?? []).flatMap((s) => Object.entries(s)))
  t.same(requirement(op('get', '/v1/users')), { bearerAuth: ['admin'], oauth2: ['admin'] }, 'admin routes need the admin scope, and refuse keys')
  t.same(requirement(op('post', '/v1/api-keys')), { bearerAuth: [], oauth2: [] }, 'key management refuses keys')
  t.same(requirement(op('get', '/v1/users/me')), { bearerAuth: [], oauth2: [], apiKey: [] })
  t.same(requirement(op('get', '/v1/tasks')), { bearerAuth: ['tasks:read'], oauth2: ['tasks:read'], apiKey: ['tasks:read'] })
  for (const path of ['/v1/auth/signup', '/v1/auth/login', '/v1/auth/token', '/v1/auth/refresh', '/v1/auth/logout']) {
    t.same(op('post', path).security, [], `${path} is public`)
    t.ok(op('post', path).responses['429'], `${path} documents 429`)
  }
  for (const [path, methods] of Object.entries(document.paths)) {
    for (const [method, o] of Object.entries(methods)) {
      if (o.security === undefined || o.security.length === 0) continue
      t.ok(['401', '403', '429'].every((s) => o.responses[s]), `${method} ${path} documents 401, 403 and 429`)
      t.match(o.description, /\*\*Requires:\*\*/, `${method} ${path} says what it requires`)
    }
  }
  t.match(op('post', '/v1/auth/token'), { requestBody: { content: { 'application/x-www-form-urlencoded': {} } } })
})

tap.test('the rate limit headers are declared on every answer given after the limit is applied', async (t) => {
  const document = JSON.parse(await generateOpenApi()) as { paths: Record<string, Record<string, Operation>> }
  const rateLimitHeaders = ['ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset']
  for (const [path, methods] of Object.entries(document.paths)) {
    for (const [method, o] of Object.entries(methods)) {
      const authenticated = (o.security?.length ?? 0) > 0
      if (!authenticated && !path.startsWith('/v1/auth/')) continue
      for (const [status, response] of Object.entries(o.responses)) {
        const declared = rateLimitHeaders.filter((h) => response.headers?.[h] !== undefined)
        // Refused before the limit: a 401 (authentication comes first), a 414 (by the router); the
        // default response covers answers given before any route runs.
        const before = (authenticated && status === '401') || status === '414' || status === 'default'
        t.same(declared, before ? [] : rateLimitHeaders, `${method} ${path} ${status}: ${before ? 'no' : 'the'} RateLimit headers`)
      }
    }
  }
})

tap.test('both kinds of credentials at once: the problem says which to send, for clients generated with one token for every scheme', async (t) => {
  const { app } = await buildProbe(t)
  const user = await createUser(app)
  const res = await app.inject({ method: 'GET', url: '/v1/probe/read', headers: { ...bearer(user.accessToken), 'x-api-key': user.accessToken } })
  const problem = assertProblem(t, res, 401, 'AMBIGUOUS_CREDENTIALS')
  t.match(problem.detail, /either `Authorization: Bearer <token>` or `X-API-Key: <key>`, not both/)
  t.match(problem.detail, /Use it from code/, 'points to the guide section that shows how')
  t.match(res.headers['www-authenticate'], /error="invalid_request"/)
})
