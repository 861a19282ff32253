/**
 * Fails when openapi.json breaks the contract of a base version of itself, unless info.version's
 * major number went up. The base is `--base-file FILE`, or openapi.json at `--base-ref REF` (also
 * read from API_BASE_REF), else at the newest release tag `v*`, else at the merge base with
 * origin/main, else at the previous commit. Changes are classified by api-smart-diff.
 */
import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { apiCompare } from 'api-smart-diff'
import { projectRoot } from '../src/lib/project-root.js'
import { runsAsScript } from './run-as-script.js'

interface OpenApiDocument { info: { version: string } }

export interface BreakingChange { path: string, description: string }

export interface Verdict {
  breaking: BreakingChange[]
  baseVersion: string
  version: string
  /** The major version went up, which is what makes breaking changes acceptable. */
  majorBumped: boolean
  ok: boolean
}

const major = (version: string): number => Number.parseInt(version.split('.')[0] ?? '', 10)

type Json = unknown

/** What a local `$ref` (`#/components/schemas/X`) names in `document`. */
function resolve (document: Json, ref: string): Json {
  return ref.slice(2).split('/')
    .reduce((node: Json, key) => (node as Record<string, Json>)[key.replaceAll('~1', '/').replaceAll('~0', '~')], document)
}

const refOf = (node: Json): string | undefined =>
  typeof node === 'object' && node !== null && !Array.isArray(node) && typeof (node as { $ref?: unknown }).$ref === 'string'
    ? (node as { $ref: string }).$ref
    : undefined

/**
 * The two documents with a `$ref` replaced by what it names wherever the other document has
 * something else at that place (an inline schema, another reference), and kept where both refer to
 * the same component. api-smart-diff resolves references itself and judges a shared component's
 * changes where it is used; but a schema that moved between inline and named would look to it like
 * changed values. Inlining every reference avoids that too, at ten times the cost: the inlined
 * document repeats each shared schema wherever it is used.
 */
function alignReferences (base: Json, head: Json): [Json, Json] {
  const visit = (b: Json, h: Json, refs: string[]): [Json, Json] => {
    const bRef = refOf(b)
    const hRef = refOf(h)
    if (bRef !== undefined && bRef === hRef) return [b, h]
    if (bRef !== undefined || hRef !== undefined) {
      const ref = (bRef ?? hRef)!
      if (refs.includes(ref)) throw new Error(`api:breaking cannot inline the recursive ${ref}`)
      const expand = (node: Json, name: string | undefined, document: Json) => {
        if (name === undefined) return node
        // Siblings of `$ref` (a description, say) apply on top of what it names.
        const siblings = Object.fromEntries(Object.entries(node as Record<string, Json>).filter(([key]) => key !== '$ref'))
        return { ...(resolve(document, name) as object), ...siblings }
      }
      return visit(expand(b, bRef, base), expand(h, hRef, head), [...refs, ref])
    }
    if (Array.isArray(b) && Array.isArray(h)) {
      const pairs = b.map((item, i) => i < h.length ? visit(item, h[i], refs) : [item, undefined] as [Json, Json])
      return [pairs.map(([x]) => x), [...pairs.slice(0, h.length).map(([, y]) => y), ...h.slice(b.length)]]
    }
    if (typeof b !== 'object' || b === null || typeof h !== 'object' || h === null || Array.isArray(b) || Array.isArray(h)) return [b, h]
    const outB: Record<string, Json> = {}
    const outH: Record<string, Json> = {}
    for (const key of Object.keys(b)) {
      if (key in h) [outB[key], outH[key]] = visit((b as Record<string, Json>)[key], (h as Record<string, Json>)[key], refs)
      else outB[key] = (b as Record<string, Json>)[key]
    }
    for (const key of Object.keys(h)) if (!(key in b)) outH[key] = (h as Record<string, Json>)[key]
    return [outB, outH]
  }
  return visit(base, head, [])
}

export function compareContracts (base: OpenApiDocument, head: OpenApiDocument): Verdict {
  const [before, after] = alignReferences(base, head)
  const { diffs } = apiCompare(before as OpenApiDocument, after as OpenApiDocument)
  const breaking = diffs
    // A component schema is judged where it is used: the tool reports its changes under every
    // operation that refers to it, where it knows a request from a response. Its verdict on the
    // component alone lacks that context (an added required field would count as breaking even in
    // a response-only schema).
    .filter((diff) => diff.type === 'breaking' && diff.path[0] !== 'components')
    .map((diff) => ({ path: diff.path.join(' › '), description: diff.description ?? `${diff.action} ${diff.path.join('/')}` }))
  const majorBumped = major(head.info.version) > major(base.info.version)
  return { breaking, baseVersion: base.info.version, version: head.info.version, majorBumped, ok: breaking.length === 0 || majorBumped }
}

function git (...args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd: projectRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return undefined
  }
}

/** The ref to compare with when none is given, and why it was chosen. */
function defaultBaseRef (): { ref: string, why: string } | undefined {
  const tag = git('describe', '--tags', '--abbrev=0', '--match', 'v[0-9]*')
  if (tag !== undefined) return { ref: tag, why: 'newest release tag' }
  const mergeBase = git('merge-base', 'HEAD', 'origin/main')
  if (mergeBase !== undefined && mergeBase !== git('rev-parse', 'HEAD')) return { ref: mergeBase, why: 'merge base with origin/main' }
  if (git('rev-parse', '--verify', '--quiet', 'HEAD~1') !== undefined) return { ref: 'HEAD~1', why: 'previous commit (no release tag yet)' }
  return undefined
}

if (runsAsScript('api-breaking')) {
  const { values } = parseArgs({ options: { 'base-ref': { type: 'string' }, 'base-file': { type: 'string' }, 'head-file': { type: 'string' } } })
  const head = JSON.parse(await readFile(values['head-file'] ?? join(projectRoot, 'openapi.json'), 'utf8')) as OpenApiDocument
  let base: OpenApiDocument
  let baseName: string
  if (values['base-file'] !== undefined) {
    base = JSON.parse(await readFile(values['base-file'], 'utf8')) as OpenApiDocument
    baseName = values['base-file']
  } else {
    const given = values['base-ref'] ?? process.env.API_BASE_REF
    const chosen = given === undefined || given === '' ? defaultBaseRef() : { ref: given, why: 'given' }
    if (chosen === undefined) {
      console.log('api:breaking: no earlier version of openapi.json to compare with')
      process.exit(0)
    }
    const text = git('show', `${chosen.ref}:openapi.json`)
    if (text === undefined) {
      // The ref predates openapi.json (or is unknown): name it, so a typo does not pass silently.
      console.error(`api:breaking: ${chosen.ref} (${chosen.why}) has no openapi.json`)
      process.exit(given === undefined ? 0 : 1)
    }
    base = JSON.parse(text) as OpenApiDocument
    baseName = `${chosen.ref} (${chosen.why})`
  }

  const verdict = compareContracts(base, head)
  console.log(`api:breaking: openapi.json ${verdict.version} against ${baseName} at ${verdict.baseVersion}`)
  for (const change of verdict.breaking) console.log(`  breaking: ${change.description}\n            at ${change.path}`)
  if (verdict.breaking.length === 0) console.log('  no breaking change')
  else if (verdict.majorBumped) console.log(`  ${verdict.breaking.length} breaking change(s) accepted: the major version went up`)
  else console.error(`  ${verdict.breaking.length} breaking change(s) without a major version bump: keep the old behaviour, or release it as ${major(verdict.baseVersion) + 1}.0.0 (see the versioning policy in docs/api-guide.md)`)
  process.exit(verdict.ok ? 0 : 1)
}
