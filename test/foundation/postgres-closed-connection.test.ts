import { createRequire } from 'node:module'
import tap from 'tap'
import type postgresJs from 'postgres'
import { TEST_DATABASE_URL } from '../helper.js'

// patches/postgres+3.4.9.patch: a query sent on a reserved connection whose server side had ended
// (a transaction's rollback after PostgreSQL went away) was written to a socket that no longer
// existed, from a setImmediate: an uncaught TypeError that ended the process.
const builds = {
  'ESM build (what the service loads)': import.meta.resolve('postgres'),
  'CommonJS build': `file://${createRequire(import.meta.url).resolve('postgres')}`,
}

type Sql = typeof postgresJs

for (const [build, url] of Object.entries(builds)) {
  tap.test(`${build}: a query on a reserved connection that the server ended fails at once, and nothing is thrown`, {
    skip: TEST_DATABASE_URL === undefined ? 'needs PostgreSQL (TEST_DATABASE_URL)' : false,
  }, async (t) => {
    const { default: postgres } = await import(url) as { default: Sql }
    const sql = postgres(TEST_DATABASE_URL!, { max: 1, onnotice: () => {} })
    const admin = postgres(TEST_DATABASE_URL!, { max: 1, onnotice: () => {} })
    t.teardown(async () => { await sql.end({ timeout: 1 }); await admin.end({ timeout: 1 }) })
    const reserved = await sql.reserve()
    const [row] = await reserved<[{ pid: number }]>`select pg_backend_pid() as pid`
    await admin`select pg_terminate_backend(${row!.pid})`
    await new Promise((resolve) => setTimeout(resolve, 300))
    const outcome = await Promise.race([
      reserved`select 1`.then(() => 'answered', (err: { code?: string }) => `refused: ${err.code}`),
      new Promise((resolve) => setTimeout(() => { resolve('no answer within 3 s') }, 3000)),
    ])
    t.equal(outcome, 'refused: CONNECTION_CLOSED')
    // A crash would come from a timer: give it its turn (tap fails the test on an uncaught exception).
    await new Promise((resolve) => setImmediate(resolve))
    reserved.release()
    t.equal((await sql`select 1 as one`)[0]!.one, 1, 'the pool goes on with a new connection')
  })
}
