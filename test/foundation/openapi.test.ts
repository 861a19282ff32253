import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import tap from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { generateOpenApi } from '../../scripts/openapi.js'
import { projectRoot } from '../../src/lib/project-root.js'
import { build, createUser, injectAs, type T } from '../helper.js'

interface Response { headers?: Record<string, { $ref?: string }>, content?: Record<string, { schema?: { $ref?: string } }> }
interface Operation {
  operationId?: string
  summary?: string
  tags?: string[]
  security?: unknown[]
  parameters?: Array<{ in: string }>
  responses: Record<string, Response>
}
interface Document { paths: Record<string, Record<string, Operation>>, components: { schemas: Record<string, unknown>, headers: Record<string, unknown> } }

const documented = async () => JSON.parse(await generateOpenApi()) as Document
const operationsOf = (document: Document) => Object.entries(document.paths)
  .flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ name: `${method.toUpperCase()} ${path}`, op })))
const headerRef = (name: string) => ({ $ref: `#/components/headers/${name}` })

tap.test('the committed openapi.json is what the code generates (run `npm run openapi` to update it)', async (t) => {
  const committed = await readFile(join(projectRoot, 'openapi.json'), 'utf8')
  t.equal(await generateOpenApi(), committed)
})

tap.test('GET /openapi.json serves the same OpenAPI 3.1 document', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'GET', url: '/openapi.json' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), JSON.parse(await generateOpenApi()))
  t.equal(res.json().openapi, '3.1.0')
})

tap.test('GET /docs serves Swagger UI', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'GET', url: '/docs' })
  t.equal(res.statusCode, 200)
  t.match(res.body, /swagger-ui/i)
  const init = await app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' })
  t.equal(init.statusCode, 200)
})

tap.test('every operation is documented for SDK generators', async (t) => {
  const document = JSON.parse(await generateOpenApi()) as { paths: Record<string, Record<string, Operation>>, components: { schemas: Record<string, unknown> } }
  const ids = new Set<string>()
  for (const [path, methods] of Object.entries(document.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const name = `${method.toUpperCase()} ${path}`
      t.match(op.operationId, /^[a-z][A-Za-z0-9]+$/, `${name} has a camelCase operationId`)
      t.notOk(ids.has(op.operationId!), `${name} operationId is unique`)
      ids.add(op.operationId!)
      t.ok(op.summary, `${name} has a summary`)
      t.ok(op.tags?.length, `${name} has a tag`)
      // A redirect is the success of an operation a browser follows (single sign-on).
      t.ok(Object.keys(op.responses).some((s) => s.startsWith('2') || s === '302'), `${name} documents a success`)
      for (const [status, response] of Object.entries(op.responses)) {
        if (Number(status) >= 400) t.ok(response.content?.['application/problem+json'], `${name} ${status} is problem+json`)
      }
      if (path.startsWith('/v1/') && !path.startsWith('/v1/auth/')) {
        t.ok(op.security?.length, `${name} declares its security`)
        t.ok(op.responses['401'], `${name} documents 401`)
      }
    }
  }
  for (const name of ['Problem', 'User', 'TokenPair']) t.ok(document.components.schemas[name], `components.schemas.${name}`)
})

tap.test('every response declares the headers the server sends, as references to components.headers', async (t) => {
  const document = await documented()
  for (const { name, op } of operationsOf(document)) {
    for (const [status, response] of Object.entries(op.responses)) {
      const headers = response.headers ?? {}
      t.same(headers['x-request-id'], headerRef('X-Request-Id'), `${name} ${status} declares X-Request-Id`)
      for (const [header, declared] of Object.entries(headers)) {
        t.ok(declared.$ref !== undefined && document.components.headers[declared.$ref.split('/').pop()!], `${name} ${status} ${header} refers to a named header`)
      }
      if (status === '401') t.same(headers['www-authenticate'], headerRef('WWW-Authenticate'), `${name} 401 declares WWW-Authenticate`)
      if (status === '429' || status === '503') t.same(headers['retry-after'], headerRef('Retry-After'), `${name} ${status} declares Retry-After`)
    }
    t.match(op.responses.default, { content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } }, `${name} declares its other errors`)
    if (op.parameters?.some((p) => p.in === 'path')) t.ok(op.responses['414'], `${name} declares 414 for a path parameter past 200 characters`)
  }
  const response = (path: string, method: string, status: string) => document.paths[path]![method]!.responses[status]!
  t.same(response('/v1/auth/signup', 'post', '201').headers?.location, headerRef('Location'), 'signup: Location')
  t.same(response('/v1/tasks', 'post', '201').headers?.location, headerRef('Location'), 'create task: Location')
  t.same(response('/v1/tasks', 'post', '201').headers?.etag, headerRef('ETag'), 'create task: ETag')
  t.same(response('/v1/users', 'get', '200').headers?.link, headerRef('Link'), 'list users: Link')
  t.same(response('/v1/tasks', 'get', '200').headers?.link, headerRef('Link'), 'list tasks: Link')
  const notModified = response('/v1/tasks/{id}', 'get', '304')
  t.same(notModified.headers?.etag, headerRef('ETag'), 'a conditional GET declares 304 with the ETag')
  t.notOk(notModified.content, 'and no body')
})

/** Every enum of two or more values in `node` (an `enum`, or an `anyOf` of single values), as its sorted values, with where it is. */
function enumsIn (node: unknown, at = '#'): Array<{ values: string, at: string }> {
  if (Array.isArray(node)) return node.flatMap((item, i) => enumsIn(item, `${at}/${i}`))
  if (typeof node !== 'object' || node === null) return []
  const schema = node as { enum?: unknown[], anyOf?: Array<{ enum?: unknown[], const?: unknown }> }
  const values = schema.enum ?? (schema.anyOf?.every((a) => a.enum?.length === 1 || 'const' in a) === true ? schema.anyOf.map((a) => a.enum?.[0] ?? a.const) : undefined)
  const here = values !== undefined && values.length > 1 ? [{ values: JSON.stringify([...values].sort()), at }] : []
  return [...here, ...Object.entries(node).flatMap(([key, value]) => key === 'example' || key === 'examples' ? [] : enumsIn(value, `${at}/${key}`))]
}

tap.test('each enum is written once, so that generated clients make one type of it', async (t) => {
  const document = await documented()
  const places = new Map<string, string[]>()
  for (const { values, at } of enumsIn(document)) places.set(values, [...places.get(values) ?? [], at])
  for (const [values, at] of places) t.equal(at.length, 1, `${values} is written once`, { found: at })
  for (const name of ['Priority', 'Role', 'ApiKeyScope']) t.ok(document.components.schemas[name], `components.schemas.${name}`)
})

/** Asserts that `res` has the status its operation documents and every header that response declares, but `unless`. */
function assertDocumented (t: T, document: Document, method: string, path: string, res: LightMyRequestResponse, unless: string[] = []): void {
  const response = document.paths[path]![method]!.responses[String(res.statusCode)]
  t.ok(response, `${method.toUpperCase()} ${path} documents ${res.statusCode}`)
  for (const header of Object.keys(response?.headers ?? {}).filter((h) => !unless.includes(h))) {
    t.ok(res.headers[header], `${method.toUpperCase()} ${path} ${res.statusCode} carries ${header}`)
  }
}

tap.test('real responses carry the headers their documented responses declare', async (t) => {
  const document = await documented()
  const admin = { ADMIN_USERNAME: 'openapi_admin', ADMIN_PASSWORD: 'openapi admin password' }
  const app = await build(t, admin)
  const json = { 'content-type': 'application/json' }

  const signup = await app.inject({ method: 'POST', url: '/v1/auth/signup', headers: json, payload: { username: 'openapi_headers', password: 'long enough password' } })
  assertDocumented(t, document, 'post', '/v1/auth/signup', signup)
  const wrongPassword = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: 'openapi_headers', password: 'wrong password' } })
  assertDocumented(t, document, 'post', '/v1/auth/login', wrongPassword)
  assertDocumented(t, document, 'get', '/v1/users/me', await app.inject({ method: 'GET', url: '/v1/users/me' }))

  const user = await createUser(app)
  assertDocumented(t, document, 'get', '/v1/users/me', await injectAs(app, user, { method: 'GET', url: '/v1/users/me' }))
  const created = await injectAs(app, user, { method: 'POST', url: '/v1/tasks', payload: { title: 'Declared headers' } })
  assertDocumented(t, document, 'post', '/v1/tasks', created, ['idempotent-replayed'])
  const notModified = await injectAs(app, user, { method: 'GET', url: `/v1/tasks/${created.json<{ id: string }>().id}`, headers: { 'if-none-match': created.headers.etag as string } })
  t.equal(notModified.statusCode, 304)
  assertDocumented(t, document, 'get', '/v1/tasks/{id}', notModified)
  // A role refused: WWW-Authenticate comes with a missing scope only.
  assertDocumented(t, document, 'get', '/v1/users', await injectAs(app, user, { method: 'GET', url: '/v1/users' }), ['www-authenticate'])

  const login = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username: admin.ADMIN_USERNAME, password: admin.ADMIN_PASSWORD } })
  const page = await app.inject({ method: 'GET', url: '/v1/users?limit=1', headers: { authorization: `Bearer ${login.json<{ access_token: string }>().access_token}` } })
  assertDocumented(t, document, 'get', '/v1/users', page)

  app.shuttingDown = true
  assertDocumented(t, document, 'get', '/health/ready', await app.inject({ method: 'GET', url: '/health/ready' }))

  const strict = await build(t, { AUTH_RATE_LIMIT_MAX: '1' })
  await strict.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refresh_token: 'rt_unknown' } })
  const limited = await strict.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refresh_token: 'rt_unknown' } })
  t.equal(limited.statusCode, 429)
  assertDocumented(t, document, 'post', '/v1/auth/refresh', limited)
})
