/**
 * `npm test [-- <test files>]`: compiles the TypeScript of src/, test/, scripts/ and the SDK into
 * `dist/tests/`, each file at its own path, then runs tap on the compiled test files (all of them,
 * or those named), so that each test process, and each server a test starts, runs plain
 * JavaScript. A TypeScript loader costs every such process about 1.5 s of CPU before its first
 * line. The files are bundled with the dependencies they import, the code they share split into
 * chunks, so that a process loads a few dozen files rather than a thousand (docs/performance.md,
 * "Test-suite time"); it is one esbuild call.
 */
import { spawn } from 'node:child_process'
import { readdir, rm } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { build } from 'esbuild'
import { external as serverExternal, requireShim } from './bundle.js'
import { projectRoot } from '../src/lib/project-root.js'

/** Below the project, so packages and `projectRoot` resolve from the compiled files as from the sources. */
const outdir = join(projectRoot, 'dist', 'tests')

/**
 * Beside the server bundle's: the test runner (each process must share tap's one instance), tools
 * that find files of their own (the browser driver, the bundler, the TypeScript compiler), servers
 * only tests start, and packages that the SDK and the tests both load, which must stay one copy as
 * Node loads them (their error classes are compared).
 */
const external = [...serverExternal, 'tap', '@tapjs/*', 'playwright-core', 'esbuild', 'typescript', 'oidc-provider', 'smtp-server', 'mailparser', 'standardwebhooks', 'undici']

async function typescriptFiles (folder: string): Promise<string[]> {
  const entries = await readdir(join(projectRoot, folder), { recursive: true, withFileTypes: true })
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts'))
    .map((entry) => relative(projectRoot, join(entry.parentPath, entry.name)))
}

async function compile (): Promise<void> {
  // Emptied first: a test file deleted from the sources must not run from an old copy.
  await rm(outdir, { recursive: true, force: true })
  await build({
    entryPoints: (await Promise.all(['src', 'test', 'scripts', 'sdk/src'].map(typescriptFiles))).flat(),
    outdir,
    outbase: '.',
    absWorkingDir: projectRoot,
    bundle: true,
    // One module graph for every test process: what files share is split into chunks, loaded once.
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    external,
    banner: { js: requireShim },
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // No source maps: Node would read them in every test process, and tap's reports quote the
    // failing line of the test itself.
    logLevel: 'warning',
  })
}

/** `test/x.test.ts` → `dist/tests/test/x.test.js`; tap's own options pass unchanged. */
const compiledPath = (arg: string) => /^test\/.*\.ts$/.test(arg) ? relative(projectRoot, join(outdir, arg.replace(/\.ts$/, '.js'))) : arg

/**
 * The files that take longest alone start first, so that none is left running by itself at the end,
 * and those that mostly wait (on streams, webhook retries, token expiry) start one at a time
 * between two that keep the cores busy (servers they start, browsers, a large table): started side
 * by side, three waiting files left the cores half idle for 15 s (docs/performance.md, "Test-suite
 * time"). The rest follow in tap's alphabetical order.
 */
const startFirst = [
  'foundation/server', 'operations/shutdown', 'webhooks/webhooks', 'web/browser', 'browser/docs', 'events/stream',
  'tasks/explain', 'web/single-sign-on-browser', 'sdk/refresh', 'foundation/start', 'projects/sharing',
  'auth/account-security', 'operations/metrics', 'foundation/errors', 'sdk/sdk',
].map((name) => `test/${name}.test.ts`)

/** Every test file, those in `startFirst` first, then the rest in alphabetical order. */
async function orderedTestFiles (): Promise<string[]> {
  const files = (await typescriptFiles('test')).filter((file) => file.endsWith('.test.ts')).sort()
  const missing = startFirst.filter((file) => !files.includes(file))
  if (missing.length > 0) throw new Error(`scripts/test.ts names test files that do not exist: ${missing.join(', ')}`)
  return [...startFirst, ...files.filter((file) => !startFirst.includes(file))]
}

const args = process.argv.slice(2)
// tap's own options alone (or nothing): every test file, in the order above.
const files = args.some((arg) => !arg.startsWith('-')) ? [] : await orderedTestFiles()
await compile()
const tap = spawn(process.execPath, [join(projectRoot, 'node_modules/tap/dist/esm/run.mjs'), ...[...args, ...files].map(compiledPath)], {
  cwd: projectRoot,
  stdio: 'inherit',
  // patches/: tap runs the files named in the order given, not sorted, and without its async-hook
  // domains, which cost every test process about a tenth of its CPU.
  env: { ...process.env, TAP_KEEP_FILE_ORDER: '1', TAP_ASYNC_DOMAINS: '0' },
})
tap.on('exit', (code, signal) => { process.exitCode = code ?? (signal === null ? 1 : 128) })
