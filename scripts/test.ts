/**
 * `npm test [-- <test files>]`: compiles the TypeScript of src/, test/, scripts/ and the SDK, file for
 * file, into `dist/tests/`, then runs tap on the compiled test files (all of them, or those named),
 * so that each test process, and each server a test starts, runs plain JavaScript. A TypeScript
 * loader costs every such process about 1.5 s of CPU before its first line (docs/performance.md);
 * compiling everything is one esbuild call.
 */
import { spawn } from 'node:child_process'
import { readdir, rm } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { build } from 'esbuild'
import { projectRoot } from '../src/lib/project-root.js'

/** Below the project, so packages and `projectRoot` resolve from the compiled files as from the sources. */
const outdir = join(projectRoot, 'dist', 'tests')
const roots = ['src', 'test', 'scripts', 'sdk/src']

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
    entryPoints: (await Promise.all(roots.map(typescriptFiles))).flat(),
    outdir,
    outbase: '.',
    absWorkingDir: projectRoot,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // No source maps: tap would map its callers back to test/*.ts, and t.mockImport resolve its
    // relative paths from there, where no compiled module is.
    logLevel: 'warning',
  })
}

/** `test/x.test.ts` → `dist/tests/test/x.test.js`; tap's own options pass unchanged. */
const compiledPath = (arg: string) => /^test\/.*\.ts$/.test(arg) ? relative(projectRoot, join(outdir, arg.replace(/\.ts$/, '.js'))) : arg

await compile()
const tap = spawn(process.execPath, [join(projectRoot, 'node_modules/tap/dist/esm/run.mjs'), ...process.argv.slice(2).map(compiledPath)], { cwd: projectRoot, stdio: 'inherit' })
tap.on('exit', (code, signal) => { process.exitCode = code ?? (signal === null ? 1 : 128) })
