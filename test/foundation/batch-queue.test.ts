/**
 * Calls run in batches (src/lib/batch-queue.ts): alone while a slot is free, together while every
 * slot is busy, never more than the batch's maximum, each answered, and in the first call's context.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import tap from 'tap'
import { batchQueue, type Queued } from '../../src/lib/batch-queue.js'

/** A run that the test finishes by hand, recording each batch's items. */
function manualRuns () {
  const batches: number[][] = []
  const finish: Array<() => void> = []
  const run = async (batch: Array<Queued<number, string>>) => {
    batches.push(batch.map((queued) => queued.item))
    await new Promise<void>((resolve) => finish.push(resolve))
    for (const queued of batch) queued.resolve(`done ${queued.item}`)
  }
  return { batches, finish, run }
}

const settle = async () => { for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve)) }

tap.test('calls run alone while slots are free and together once they are all busy', async (t) => {
  const { batches, finish, run } = manualRuns()
  const call = batchQueue(2, 3, run)
  const answers = [1, 2, 3, 4, 5, 6, 7].map(async (n) => await call(n))
  t.same(batches, [[1], [2]], 'the first two take the two slots, alone')
  finish.shift()!()
  await settle()
  t.same(batches, [[1], [2], [3, 4, 5]], 'a freed slot runs the calls waiting for it together, at most three')
  finish.shift()!()
  await settle()
  t.same(batches, [[1], [2], [3, 4, 5], [6, 7]], 'and the next slot the rest')
  finish.shift()!()
  finish.shift()!()
  t.same(await Promise.all(answers), [1, 2, 3, 4, 5, 6, 7].map((n) => `done ${n}`), 'every call gets its own answer')
  const last = call(8)
  t.same(batches.at(-1), [8], 'an idle queue runs a call at once, alone')
  finish.shift()!()
  t.equal(await last, 'done 8')
})

tap.test('a batch that throws fails the calls it did not answer and those waiting behind it', async (t) => {
  let runs = 0
  const call = batchQueue<number, string>(1, 10, async (batch) => {
    runs += 1
    for (const queued of batch) if (queued.item === 1) queued.resolve('answered')
    await new Promise((resolve) => setImmediate(resolve))
    throw new Error('the database is unreachable')
  })
  const [first, second, third] = await Promise.allSettled([call(1), call(2), call(3)])
  t.same(first, { status: 'fulfilled', value: 'answered' }, 'an answered call keeps its answer')
  t.match(second, { status: 'rejected', reason: { message: 'the database is unreachable' } }, 'a call waiting behind it gets the error')
  t.match(third, { status: 'rejected', reason: { message: 'the database is unreachable' } }, 'as does every other')
  t.equal(runs, 1, 'without a run of its own')
  t.equal(await Promise.race([call(1).catch(() => 'failed'), new Promise((resolve) => setTimeout(() => { resolve('pending') }, 50))]), 'answered', 'the queue runs the next call afterwards')
})

tap.test('a batch runs in the async context of its first call', async (t) => {
  const storage = new AsyncLocalStorage<string>()
  const contexts: Array<string | undefined> = []
  const { finish, run } = manualRuns()
  const call = batchQueue<number, string>(1, 10, async (batch) => {
    contexts.push(storage.getStore())
    await run(batch)
  })
  const answers = ['a', 'b', 'c'].map(async (name, i) => await storage.run(name, async () => await call(i)))
  finish.shift()!()
  await settle()
  finish.shift()!()
  await Promise.all(answers)
  t.same(contexts, ['a', 'b'], 'the waiting calls b and c ran in b\'s context, not in a\'s')
})
