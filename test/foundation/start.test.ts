/**
 * What `npm start` does before serving: run the bundle, rebuilt only when its sources changed, and
 * open the embedded database, migrating it only when a migration is pending.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import tap from 'tap'
import { bundleIsCurrent, bundleServer } from '../../scripts/bundle.js'
import { openPglite, queryRows } from '../../src/db/client.js'
import { latestMigrationMillis, migratePglite } from '../../src/db/migrate.js'
import { projectRoot } from '../../src/lib/project-root.js'
import { unmigratedDataDir } from '../helper.js'

tap.test('the bundle counts as current until a file it was built from differs', async (t) => {
  const folder = await mkdtemp(join(tmpdir(), 'tasks-api-bundle-'))
  t.teardown(() => rm(folder, { recursive: true, force: true }))
  const outfile = join(folder, 'dist', 'server.mjs')
  t.equal(await bundleIsCurrent(outfile), false, 'not built yet')

  // As if the build ran a minute later: sources saved just before it (this tree may be being
  // edited) would otherwise, rightly, leave it unrecorded.
  const realNow = Date.now
  const clock = t.capture(Date, 'now', () => realNow() + 60_000)
  await bundleServer(outfile)
  clock.restore()
  t.equal(await bundleIsCurrent(outfile), true, 'current once built')

  const record = `${outfile}.sources.json`
  const sources = JSON.parse(await readFile(record, 'utf8')) as Record<string, [number, number]>
  const entry = join(projectRoot, 'src/server.ts')
  t.ok(sources[entry], 'the entry point is among its sources')
  await writeFile(record, JSON.stringify({ ...sources, [entry]: [sources[entry]![0] - 1, sources[entry]![1]] }))
  t.equal(await bundleIsCurrent(outfile), false, 'not current once a source was saved since')
})

tap.test('the embedded database: migrated on its first start, only checked on the next', async (t) => {
  // As initdb leaves it, copied rather than made again (a first start on an empty folder, initdb
  // included, is the server test's).
  const dataDir = await unmigratedDataDir(t)

  const first = await openPglite(dataDir)
  await migratePglite(first)
  const [newest] = await queryRows<{ created_at: string }>(first.db, sql`select max(created_at)::text as created_at from drizzle.__drizzle_migrations`)
  t.equal(Number(newest?.created_at), latestMigrationMillis(), 'a new database gets every migration')
  await first.close()

  const again = await openPglite(dataDir)
  t.teardown(() => again.close())
  const queries = t.capture(again.client, 'query', again.client.query)
  const transactions = t.capture(again.client, 'transaction', again.client.transaction)
  await migratePglite(again)
  t.equal(queries().length, 1, 'one query finds every migration applied')
  t.equal(transactions().length, 0, "drizzle's migrator does not run")
  queries.restore()
  transactions.restore()

  const { rows } = await again.client.query<{ shared_buffers: string }>('show shared_buffers')
  t.equal(rows[0]?.shared_buffers, '16MB', "16 MB of shared buffers, whatever initdb wrote in the data directory's postgresql.conf")
})
