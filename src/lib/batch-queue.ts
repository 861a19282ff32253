import { AsyncResource } from 'node:async_hooks'

/** One queued call: what it asked for, and how to answer it. */
export interface Queued<Item, Result> {
  item: Item
  resolve: (result: Result) => void
  reject: (error: unknown) => void
}

/**
 * Runs calls in batches: a call runs at once while fewer than `concurrency` batches are in flight;
 * calls made while they all are wait for the next free slot and then run together, at most
 * `maxBatch` at a time. No call waits for a timer, so an idle service runs each call alone and a
 * busy one runs many per batch. `run` answers every call of its batch; it throws only for a failure
 * the calls waiting behind it would meet too (an unreachable database), which fails them all at
 * once, with those it left unanswered, instead of each after its own wait. A batch runs in the
 * async context of its first call, so its work is traced and logged under that call rather than
 * under the batch that ran before it.
 */
export function batchQueue<Item, Result> (
  concurrency: number,
  maxBatch: number,
  run: (batch: Array<Queued<Item, Result>>) => Promise<void>,
): (item: Item) => Promise<Result> {
  // Calls waiting for a slot; the first of each future batch keeps the context it was made in.
  const waiting: Array<Queued<Item, Result> & { context?: (go: () => void) => void }> = []
  let inFlight = 0

  function start (batch: Array<Queued<Item, Result>>): void {
    inFlight++
    run(batch)
      .catch((error: unknown) => { for (const queued of [...batch, ...waiting.splice(0)]) queued.reject(error) })
      .finally(() => {
        inFlight--
        if (waiting.length === 0) return
        const next = waiting.splice(0, maxBatch)
        const go = () => { start(next) }
        if (next[0]!.context === undefined) go()
        else next[0]!.context(go)
      })
  }

  return async (item) => await new Promise<Result>((resolve, reject) => {
    if (inFlight < concurrency) {
      start([{ item, resolve, reject }])
      return
    }
    const first = waiting.length % maxBatch === 0
    waiting.push({ item, resolve, reject, context: first ? AsyncResource.bind((go: () => void) => { go() }) : undefined })
  })
}
