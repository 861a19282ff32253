/**
 * Work that PostgreSQL ends as a deadlock's victim or a serialization failure runs again, three
 * attempts in all (retriedOnConflict in src/db/client.ts); any other error ends it at once.
 */
import tap from 'tap'
import { retriedOnConflict } from '../../src/db/client.js'

/** Work that fails with each of `errors` in turn, then answers 'done'; counts its attempts. */
function failing (...errors: Error[]) {
  const work = { attempts: 0, run: async () => {
    const error = errors[work.attempts++]
    if (error !== undefined) throw error
    return 'done'
  } }
  return work
}
const withCode = (code: string) => Object.assign(new Error(`SQLSTATE ${code}`), { code })

tap.test('a deadlock or serialization failure is run again', async (t) => {
  const work = failing(withCode('40P01'), withCode('40001'))
  t.equal(await retriedOnConflict(work.run), 'done')
  t.equal(work.attempts, 3, 'two failures, then the third attempt')
})

tap.test('three conflicts in a row end it with the last', async (t) => {
  const work = failing(withCode('40P01'), withCode('40P01'), withCode('40001'))
  await t.rejects(retriedOnConflict(work.run), { code: '40001' })
  t.equal(work.attempts, 3)
})

tap.test('any other error ends it at once', async (t) => {
  const work = failing(withCode('23505'))
  await t.rejects(retriedOnConflict(work.run), { code: '23505' })
  t.equal(work.attempts, 1)
})
