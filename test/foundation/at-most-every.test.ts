/**
 * Wake-ups folded over an interval (src/lib/at-most-every.ts): the first call runs at once, the
 * calls during the interval make one run at its end, and a call after a quiet interval runs at once.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import tap from 'tap'
import { atMostEvery } from '../../src/lib/at-most-every.js'

const INTERVAL_MS = 50

tap.test('a burst of calls runs at once and once more at the end of the interval', async (t) => {
  let runs = 0
  const wake = atMostEvery(INTERVAL_MS, () => { runs += 1 })
  wake()
  t.equal(runs, 1, 'the first call runs at once')
  wake()
  wake()
  wake()
  t.equal(runs, 1, 'calls during the interval wait for its end')
  await sleep(INTERVAL_MS * 8)
  t.equal(runs, 2, 'they make one run between them')
  await sleep(INTERVAL_MS * 8)
  t.equal(runs, 2, 'with no call meanwhile, the interval after that run ends with no run')
  wake()
  t.equal(runs, 3, 'a call after a quiet interval runs at once')
})

tap.test('an interval with no call in it ends without a run', async (t) => {
  let runs = 0
  const wake = atMostEvery(INTERVAL_MS, () => { runs += 1 })
  wake()
  await sleep(INTERVAL_MS * 8)
  t.equal(runs, 1)
})
