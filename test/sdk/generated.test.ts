/** The committed SDK code must be what `npm run sdk` makes of the committed openapi.json. */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import tap from 'tap'
import { projectRoot } from '../../src/lib/project-root.js'
import { staleSdkFiles } from '../../scripts/sdk.js'

const openapi = await readFile(join(projectRoot, 'openapi.json'), 'utf8')

tap.test('the generated SDK code is up to date', async (t) => {
  t.same(await staleSdkFiles(), [], 'run `npm run sdk` and commit sdk/src/generated')
})

tap.test('a change to the document makes it stale', async (t) => {
  const document = JSON.parse(openapi) as { components: { schemas: { Task: { properties: Record<string, unknown> } } }, paths: Record<string, Record<string, { parameters?: Array<{ name: string }> }>> }
  document.components.schemas.Task.properties.estimate = { type: 'integer' }
  t.same(await staleSdkFiles(JSON.stringify(document)), ['openapi.ts'], 'a new field changes the types')

  const createTask = document.paths['/v1/tasks']!.post!
  createTask.parameters = createTask.parameters!.filter((p) => p.name.toLowerCase() !== 'idempotency-key')
  t.same(await staleSdkFiles(JSON.stringify(document)), ['openapi.ts', 'idempotent-posts.ts'], 'and so does dropping Idempotency-Key support')
})
