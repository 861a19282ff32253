import { createRequire } from 'node:module'
import tap from 'tap'

// patches/postgres+3.4.9.patch: postgres.js keeps its pool's connection queues as arrays with holes
// that only reset when a queue drains, so under sustained load every remove() scanned a growing array.
const copies = {
  'ESM build (what the service loads)': new URL('queue.js', import.meta.resolve('postgres')).href,
  'CommonJS build': new URL('queue.js', `file://${createRequire(import.meta.url).resolve('postgres')}`).href,
}

type Queue<T> = { length: number, push: (x: T) => T, shift: () => T, remove: (x: T) => T | null }

for (const [build, url] of Object.entries(copies)) {
  tap.test(`${build}: a pool that never drains scans only its live connections`, async (t) => {
    const { default: Queue } = await import(url) as { default: <T>(initial?: T[]) => Queue<T> }
    const connections = ['a', 'b', 'c', 'd']
    const busy = Queue(connections)
    const indexOf = Array.prototype.indexOf
    let widest = 0
    Array.prototype.indexOf = function (this: unknown[], x: unknown, from = 0) {
      widest = Math.max(widest, this.length - from)
      return indexOf.call(this, x, from)
    }
    const order: string[] = []
    try {
      // What the pool does for each query sent to a busy connection: take it, move it to the back.
      for (let i = 0; i < 10_000; i++) {
        const connection = busy.shift()
        order.push(connection)
        busy.remove(connection)
        busy.push(connection)
      }
    } finally {
      Array.prototype.indexOf = indexOf
    }
    t.ok(widest <= connections.length, `remove() scanned at most ${widest} entries`)
    t.same(order.slice(-8), [...connections, ...connections], 'still first in, first out')
    t.equal(busy.length, connections.length)
    t.equal(busy.remove('c'), 'c', 'a live connection is still found and removed')
    t.same([busy.shift(), busy.shift(), busy.shift(), busy.length], ['a', 'b', 'd', 0])
  })
}
