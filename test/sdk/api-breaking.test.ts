/**
 * The breaking-change gate (`npm run api:breaking`): what SDK users would feel fails it, additions
 * pass, and a major version bump lets a breaking change through.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import tap from 'tap'
import { projectRoot } from '../../src/lib/project-root.js'
import { compareContracts } from '../../scripts/api-breaking.js'

interface Schema { required?: string[], properties: Record<string, unknown> }
interface Document {
  info: { version: string }
  paths: Record<string, Record<string, unknown>>
  components: { schemas: Record<string, Schema> }
}

const current = await readFile(join(projectRoot, 'openapi.json'), 'utf8')
/** A fresh copy of the committed document, changed by `change`. */
function changed (change: (document: Document) => void): Document {
  const document = JSON.parse(current) as Document
  change(document)
  return document
}
const removeOperation = (d: Document) => { delete d.paths['/v1/tasks/{id}']!.delete }
const removeResponseField = (d: Document) => {
  const task = d.components.schemas.Task!
  task.required = task.required!.filter((name) => name !== 'due_at')
  delete task.properties.due_at
}

tap.test('the document against itself passes', async (t) => {
  const verdict = compareContracts(changed(() => {}), changed(() => {}))
  t.same(verdict.breaking, [])
  t.ok(verdict.ok)
})

tap.test('breaking changes fail without a major bump', async (t) => {
  const base = changed(() => {})

  const removed = compareContracts(base, changed(removeOperation))
  t.notOk(removed.ok, 'removing an operation')
  t.match(removed.breaking, [{ path: /paths › \/v1\/tasks\/\{id\} › delete/ }])

  const field = compareContracts(base, changed(removeResponseField))
  t.notOk(field.ok, 'removing a required response field')
  t.ok(field.breaking.some((c) => /due_at/.test(c.description) && /Response/.test(c.description)), 'named in the report')

  const required = compareContracts(base, changed((d) => { d.components.schemas.TaskCreate!.required = ['title', 'priority'] }))
  t.notOk(required.ok, 'making a request field required')

  const minor = compareContracts(base, changed((d) => { removeOperation(d); d.info.version = '1.1.0' }))
  t.notOk(minor.ok, 'a minor bump does not excuse it')
})

tap.test('additions pass', async (t) => {
  const verdict = compareContracts(changed(() => {}), changed((d) => {
    d.components.schemas.Task!.properties.estimate_minutes = { type: ['integer', 'null'] }
    d.components.schemas.Task!.required!.push('estimate_minutes')
    d.paths['/v1/tasks']!.head = { operationId: 'countTasks', summary: 'Count your tasks', tags: ['tasks'], responses: { 204: { description: 'No content' } } }
  }))
  t.same(verdict.breaking, [], 'a new response field and a new operation break nobody')
})

tap.test('naming a schema that was inline (an enum moved into components) breaks nobody', async (t) => {
  const inline = changed((d) => {
    const priority = d.components.schemas.Priority
    for (const name of ['Task', 'TaskCreate', 'TaskReplace', 'TaskPatch']) d.components.schemas[name]!.properties.priority = priority
    const parameters = (d.paths['/v1/tasks']!.get as { parameters: Array<{ name: string, schema: unknown }> }).parameters
    parameters.find((p) => p.name === 'priority')!.schema = priority
    delete d.components.schemas.Priority
  })
  t.same(compareContracts(inline, changed(() => {})).breaking, [])
})

tap.test('a major bump accepts a breaking change', async (t) => {
  const verdict = compareContracts(changed(() => {}), changed((d) => { removeOperation(d); d.info.version = '2.0.0' }))
  t.ok(verdict.breaking.length > 0)
  t.ok(verdict.majorBumped)
  t.ok(verdict.ok)
})

tap.test('the command exits 1 on a breaking change and 0 otherwise', async (t) => {
  // The command's own work (reading the files, the verdict, the exit code) on a document of one
  // operation: the classification on the whole document is what the tests above check.
  const dir = await mkdtemp(join(tmpdir(), 'tasks-api-breaking-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const small = (fields: Record<string, unknown>) => ({
    openapi: '3.1.0',
    info: { title: 'small', version: '1.0.0' },
    paths: { '/things': { get: { operationId: 'listThings', responses: { 200: { description: 'Things', content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' } } } } } } } },
    components: { schemas: { Thing: { type: 'object', required: Object.keys(fields), properties: fields } } },
  })
  const base = join(dir, 'base.json')
  const broken = join(dir, 'broken.json')
  await writeFile(base, JSON.stringify(small({ id: { type: 'string' }, due_at: { type: ['string', 'null'] } })))
  await writeFile(broken, JSON.stringify(small({ id: { type: 'string' } })))
  // The script as `npm test` compiled it beside this test, as test/server-process.ts runs the server.
  const script = fileURLToPath(new URL('../../scripts/api-breaking.js', import.meta.url))
  const run = (...args: string[]) => promisify(execFile)(process.execPath, [script, ...args], { cwd: projectRoot })

  const failure = await run('--base-file', base, '--head-file', broken).catch((error: { code: number, stdout: string, stderr: string }) => error)
  t.equal((failure as { code?: number }).code, 1, 'exit code 1')
  t.match((failure as { stdout: string }).stdout, /breaking: .*due_at/, 'the change is named')
  t.match((failure as { stderr: string }).stderr, /without a major version bump/)

  const success = await run('--base-file', base, '--head-file', base)
  t.match(success.stdout, /no breaking change/)
})
