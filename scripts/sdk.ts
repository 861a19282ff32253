/**
 * Generates the SDK's code from the committed `openapi.json`: the types (openapi-typescript) and
 * the list of POST operations that honour `Idempotency-Key`. CI regenerates them and fails on a
 * `git diff` (.ci/run); test/sdk/generated.test.ts compares them through `staleSdkFiles`.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import openapiTS, { astToString } from 'openapi-typescript'
import { projectRoot } from '../src/lib/project-root.js'
import { runsAsScript } from './run-as-script.js'

const generatedDir = join(projectRoot, 'sdk/src/generated')
const banner = '// Generated from openapi.json by `npm run sdk`. Do not edit: change the route schemas, run\n' +
  '// `npm run openapi && npm run sdk`, and commit the result.\n'

interface Operation { parameters?: Array<{ in?: string, name?: string }> }

const readOpenApi = () => readFile(join(projectRoot, 'openapi.json'), 'utf8')

/** The generated files, by name inside sdk/src/generated, for the given OpenAPI document's text. */
async function generateSdk (text: string): Promise<Record<string, string>> {
  const document = JSON.parse(text) as { paths: Record<string, Record<string, Operation>> }
  // rootTypes gives every component schema a named export (Task, Problem, ...), as SDK users expect.
  const ast = await openapiTS(text, { rootTypes: true, rootTypesNoSchemaPrefix: true, silent: true })
  const idempotent = Object.entries(document.paths)
    .filter(([, item]) => item.post?.parameters?.some((p) => p.in === 'header' && p.name?.toLowerCase() === 'idempotency-key'))
    .map(([path]) => path)
    .sort()
  return {
    'openapi.ts': banner + astToString(ast),
    'idempotent-posts.ts': banner +
      '/** Paths whose POST honours `Idempotency-Key`, so that retrying it is safe. */\n' +
      `export const idempotentPosts: ReadonlySet<string> = new Set(${JSON.stringify(idempotent)})\n`,
  }
}

/** Names of the committed generated files that differ from a fresh generation (from openapi.json by default). */
export async function staleSdkFiles (openapiText?: string): Promise<string[]> {
  const stale: string[] = []
  for (const [name, content] of Object.entries(await generateSdk(openapiText ?? await readOpenApi()))) {
    const committed = await readFile(join(generatedDir, name), 'utf8').catch(() => undefined)
    if (committed !== content) stale.push(name)
  }
  return stale
}

if (runsAsScript('sdk')) {
  for (const [name, content] of Object.entries(await generateSdk(await readOpenApi()))) await writeFile(join(generatedDir, name), content)
}
