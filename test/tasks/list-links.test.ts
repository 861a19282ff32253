/** The `Link: rel="next"` header of the task list repeats the request's own query, at the next cursor. */
import tap from 'tap'
import { build, createUser, injectAs } from '../helper.js'

tap.test('a list without parameters links to a next page that works', async (t) => {
  const app = await build(t)
  const user = await createUser(app)
  for (let i = 0; i < 21; i++) await injectAs(app, user, { method: 'POST', url: '/v1/tasks', payload: { title: `task ${i}` } })
  const first = await injectAs(app, user, { method: 'GET', url: '/v1/tasks' })
  const { items, next_cursor: cursor } = first.json<{ items: unknown[], next_cursor: string }>()
  t.equal(items.length, 20)
  t.equal(first.headers.link, `</v1/tasks?cursor=${cursor}>; rel="next"`)
  const second = await injectAs(app, user, { method: 'GET', url: `/v1/tasks?cursor=${cursor}` })
  t.equal(second.statusCode, 200)
  t.equal(second.json<{ items: unknown[] }>().items.length, 1)
  t.notOk(second.headers.link, 'no Link on the last page')

  // A cursor sent first in the query is replaced where it stands.
  const searched = (await injectAs(app, user, { method: 'GET', url: '/v1/tasks?q=task&limit=1' })).json<{ next_cursor: string }>().next_cursor
  const again = await injectAs(app, user, { method: 'GET', url: `/v1/tasks?cursor=${searched}&limit=1&q=task` })
  t.equal(again.statusCode, 200)
  t.match(again.headers.link, /^<\/v1\/tasks\?cursor=[\w.-]+&limit=1&q=task>; rel="next"$/)
})
