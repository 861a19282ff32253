/**
 * `npm run build` (after tsc): bundles the server and the dependencies it loads at start into one
 * file, `dist/server.mjs`, which the container runs. Node otherwise resolves and compiles hundreds
 * of files at every start (TypeBox alone is 266), the larger part of start to ready.
 *
 * `npm start` runs the same bundle, through `--when-changed`: it is rebuilt only when a file it was
 * built from differs from the one esbuild read, so an unchanged tree starts without bundling and
 * without a TypeScript loader.
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { build } from 'esbuild'
import { projectRoot } from '../src/lib/project-root.js'
import { runsAsScript } from './run-as-script.js'

/**
 * Packages left to Node's own loading, because they find files next to their own code (native
 * addons, WebAssembly, static assets, worker scripts, template loaders) or because they are loaded
 * only when configured (ioredis with REDIS_URL, PGlite without DATABASE_URL, the OpenTelemetry SDK
 * with OTEL_EXPORTER_OTLP_ENDPOINT). The production image installs them as usual.
 */
export const external = ['@node-rs/argon2', '@electric-sql/pglite', '@fastify/swagger-ui', 'ioredis', 'nunjucks', 'pino', '@fastify/otel', '@opentelemetry/*']

/** CommonJS dependencies inside an ES module bundle still call require(). */
export const requireShim = "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);"

/** Files that shape the bundle without being in it: these options, the compiler's and the package's. */
const settings = ['scripts/bundle.ts', 'tsconfig.json', 'package.json'].map((file) => join(projectRoot, file))

/** Beside a bundle, the files it was built from with their modification times and sizes. */
const sourcesOf = (outfile: string): string => `${outfile}.sources.json`

async function fingerprint (files: string[]): Promise<Record<string, [number, number]>> {
  const stats = await Promise.all(files.map(async (file) => await stat(file)))
  return Object.fromEntries(files.map((file, i) => [file, [stats[i]!.mtimeMs, stats[i]!.size]]))
}

export async function bundleServer (outfile = join(projectRoot, 'dist/server.mjs')): Promise<void> {
  await rm(sourcesOf(outfile), { force: true })
  const started = Date.now()
  const result = await build({
    entryPoints: [join(projectRoot, 'src/server.ts')],
    outfile,
    absWorkingDir: projectRoot,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external,
    // Stack traces name bundle lines; `node --enable-source-maps` maps them back to src/.
    sourcemap: 'linked',
    logLevel: 'warning',
    banner: { js: requireShim },
    write: false,
    metafile: true,
  })
  // Renamed into place, so a server starting meanwhile reads a whole file, old or new.
  await mkdir(dirname(outfile), { recursive: true })
  for (const file of result.outputFiles) {
    await writeFile(`${file.path}.${process.pid}`, file.contents)
    await rename(`${file.path}.${process.pid}`, file.path)
  }
  const sources = await fingerprint([...settings, ...Object.keys(result.metafile.inputs).map((input) => resolve(projectRoot, input))])
  // A file saved while esbuild ran may be in the bundle as it was before; without a record the next
  // `--when-changed` rebuilds. The margin covers file systems whose clocks are coarser than ours.
  if (Object.values(sources).every(([mtimeMs]) => mtimeMs < started - 2_000)) {
    await writeFile(sourcesOf(outfile), JSON.stringify(sources))
  }
}

/** True when `outfile` was built from the files as they are now. */
export async function bundleIsCurrent (outfile = join(projectRoot, 'dist/server.mjs')): Promise<boolean> {
  const recorded = await readFile(sourcesOf(outfile), 'utf8').catch(() => undefined)
  if (recorded === undefined) return false
  const now = await fingerprint(Object.keys(JSON.parse(recorded) as object)).catch(() => undefined)
  return JSON.stringify(now) === recorded
}

if (runsAsScript('bundle')) {
  if (!(process.argv.includes('--when-changed') && await bundleIsCurrent())) await bundleServer()
}
