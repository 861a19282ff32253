/**
 * The feed under concurrent writers (docs/decisions/0028-gap-free-event-feed.md): transactions that
 * take their event's place early and commit late, others that roll back, and a reader polling all
 * the while, who must see every committed event exactly once, in order. On PostgreSQL, where
 * transactions do commit out of order; the embedded database runs one at a time.
 */
import tap from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { build, createUser, databaseKind } from '../helper.js'
import { type FeedPosition, parseFeedPosition } from '../../src/repositories/events.js'

const later = (a: FeedPosition, b: FeedPosition) => a[0] > b[0] || (a[0] === b[0] && a[1] > b[1])

const WRITERS = 12
const WRITES_PER_WRITER = 15
const ROUNDS = 3

if (databaseKind !== 'postgres') {
  tap.plan(0, 'commit order only varies on PostgreSQL: run with TEST_DATABASE_URL')
} else {
  tap.test('a polling reader sees every committed event once, however the writers\' commits interleave', async (t) => {
    const app = await build(t, { DB_POOL_MAX: String(WRITERS + 4) })
    for (let round = 1; round <= ROUNDS; round++) {
      const user = await createUser(app, 'writer')
      let after = (await app.eventsRepository.page(user.id, undefined, 500) as { next: FeedPosition }).next
      const committed = new Map<string, number>()
      /** Committed task ids, in the order their transactions committed. */
      const commitOrder: string[] = []
      const positionOf = new Map<string, FeedPosition>()

      const writer = async (w: number) => {
        for (let i = 0; i < WRITES_PER_WRITER; i++) {
          const rollback = (w + i) % 5 === 0
          await app.db.transaction(async (tx) => {
            const task = await app.tasksRepository.create(user.id, {
              project_id: null, assignee_id: null, title: `w${w} #${i}`, description: null, priority: 'low', due_at: null, tags: [], completed: false,
            }, tx)
            // Hold the transaction open for a while after its event took its place in the feed.
            await sleep(Math.random() * 15)
            if (rollback) throw new Error('rolled back')
            committed.set(task.id, 0)
            return task.id
          }).then((id) => { commitOrder.push(id) }, (err: Error) => { if (err.message !== 'rolled back') throw err })
        }
      }

      // The reader stops at a marker written after every writer has finished: its transaction is
      // younger than all of theirs, so once it shows, every one of their events could have too
      // (the horizon also waits for transactions of other tests on the same server).
      const seen: string[] = []
      const reader = async () => {
        const deadline = Date.now() + 60_000
        for (;;) {
          const page = await app.eventsRepository.page(user.id, after, 7)
          if ('expired' in page) throw new Error('expired')
          after = page.next
          let marked = false
          for (const event of page.items) {
            if (event.type !== 'task.created') continue
            if (event.data.title === 'marker') {
              marked = true
              continue
            }
            seen.push(event.id)
            const id = event.data.id as string
            committed.set(id, (committed.get(id) ?? 0) + 1)
            positionOf.set(id, parseFeedPosition(event.id))
          }
          if (marked || Date.now() > deadline) return
          await sleep(1)
        }
      }

      const reading = reader()
      await Promise.all(Array.from({ length: WRITERS }, async (_, w) => await writer(w)))
      await app.tasksRepository.create(user.id, { project_id: null, assignee_id: null, title: 'marker', description: null, priority: 'low', due_at: null, tags: [], completed: false })
      await reading

      const counts = [...committed.values()]
      t.equal(counts.length, WRITERS * WRITES_PER_WRITER - WRITERS * WRITES_PER_WRITER / 5, `round ${round}: every committed task and nothing else`)
      t.ok(counts.every((n) => n === 1), `round ${round}: each committed task's event seen exactly once`, { missed: counts.filter((n) => n === 0).length, repeated: counts.filter((n) => n > 1).length })
      const positions = seen.map(parseFeedPosition)
      t.ok(positions.every((p, i) => i === 0 || later(p, positions[i - 1]!)), `round ${round}: in increasing order`)
      // The test means something only if transactions did commit out of the feed's order: one that
      // committed after another whose place in the feed is later.
      const inOrderOfCommit = commitOrder.map((id) => positionOf.get(id)).filter((p): p is FeedPosition => p !== undefined)
      const inversions = inOrderOfCommit.filter((p, i) => inOrderOfCommit.slice(0, i).some((earlier) => later(earlier, p))).length
      t.ok(inversions > 0, `round ${round}: transactions committed out of order (${inversions} committed after a later place in the feed)`)
    }
  })
}
