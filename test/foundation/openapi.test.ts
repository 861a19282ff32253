import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import tap from 'tap'
import { generateOpenApi } from '../../scripts/openapi.js'
import { projectRoot } from '../../src/lib/project-root.js'
import { build } from '../helper.js'

interface Operation {
  operationId?: string
  summary?: string
  tags?: string[]
  security?: unknown[]
  responses: Record<string, { content?: Record<string, unknown> }>
}

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
      t.ok(Object.keys(op.responses).some((s) => s.startsWith('2')), `${name} documents a success`)
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
