/**
 * Plugins declare their names and the plugins they need (fastify-plugin's `name` and
 * `dependencies`), so registering them in a wrong order fails at start, with an error naming both,
 * instead of leaving a decorator undefined until a request needs it.
 */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import tap from 'tap'
import authorize from '../../src/plugins/app/authorize.js'
import { projectRoot } from '../../src/lib/project-root.js'

interface PluginMeta { name?: string, dependencies?: string[] }
const metaOf = (plugin: unknown): PluginMeta | undefined => (plugin as Record<symbol, PluginMeta | undefined>)[Symbol.for('plugin-meta')]

tap.test('a plugin registered without a plugin it depends on fails at start, naming both', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(authorize) }, {
    code: 'FST_ERR_PLUGIN_DEPENDENCY_NOT_REGISTERED',
    message: "The dependency 'authenticate' of plugin 'authorize' is not registered",
  })
})

tap.test('the same plugin starts once its dependencies are registered before it', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  // Stand-ins under the real names: what is checked is the registration order, not their work.
  await app.register(fp(async (instance) => { instance.decorate('authenticate', async () => {}) }, { name: 'authenticate' }))
  await app.register(fp(async (instance) => { instance.decorate('limitPerCaller', async () => {}) }, { name: 'caller-rate-limit' }))
  await app.register(authorize)
  await app.ready()
  t.pass('registered')
})

tap.test('every plugin under src/plugins, every route plugin and the web layer is named, and depends only on plugins that exist', async (t) => {
  const plugins = new Map<string, PluginMeta>()
  const files = [
    ...['external', 'app'].flatMap((tier) => readdirSync(join(projectRoot, 'src/plugins', tier)).filter((f) => f.endsWith('.ts')).map((f) => `plugins/${tier}/${f}`)),
    ...readdirSync(join(projectRoot, 'src/routes'), { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => `routes/${entry.name}/index.ts`),
    'web/plugin.ts',
  ]
  for (const file of files) {
    // Through a URL, so the bundler leaves the import to Node: each compiled module at its own path.
    const module = await import(new URL(`../../src/${file.replace(/\.ts$/, '.js')}`, import.meta.url).href) as { default?: unknown }
    if (module.default === undefined) continue // helpers, not plugins
    const meta = metaOf(module.default)
    t.type(meta?.name, 'string', `src/${file} is named`)
    if (meta?.name !== undefined) plugins.set(meta.name, meta)
  }
  t.ok(plugins.size >= 26, `found the plugins (${plugins.size})`)
  for (const [name, meta] of plugins) {
    for (const dependency of meta.dependencies ?? []) t.ok(plugins.has(dependency), `${name} depends on ${dependency}, a plugin here`)
  }
})
