/**
 * `npm run build` (after tsc): bundles the server and the dependencies it loads at start into one
 * file, `dist/server.mjs`, which the container runs. Node otherwise resolves and compiles hundreds
 * of files at every start (TypeBox alone is 266), the larger part of start to ready.
 */
import { join } from 'node:path'
import { build } from 'esbuild'
import { projectRoot } from '../src/lib/project-root.js'

/**
 * Packages left to Node's own loading, because they find files next to their own code (native
 * addons, WebAssembly, static assets, worker scripts, template loaders) or because they are loaded
 * only when configured (ioredis with REDIS_URL, PGlite without DATABASE_URL). The production
 * image installs them as usual.
 */
const external = ['@node-rs/argon2', '@electric-sql/pglite', '@fastify/swagger-ui', 'ioredis', 'nunjucks', 'pino']

export async function bundleServer (outfile = join(projectRoot, 'dist/server.mjs')): Promise<void> {
  await build({
    entryPoints: [join(projectRoot, 'src/server.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external,
    // Stack traces name bundle lines; `node --enable-source-maps` maps them back to src/.
    sourcemap: 'linked',
    logLevel: 'warning',
    // CommonJS dependencies inside an ES module bundle still call require().
    banner: { js: "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);" },
  })
}

if (import.meta.url === `file://${process.argv[1]}`) await bundleServer()
