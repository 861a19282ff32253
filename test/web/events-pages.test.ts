/**
 * The Activity and Webhooks pages through a cookie-keeping client, with a real webhook receiver:
 * recent changes newest first and paged; a webhook created (its secret shown once), pinged, its
 * deliveries listed and retried, its secret rotated, turned off and deleted; refusals in words.
 */
import tap from 'tap'
import { startReceiver } from '../webhooks/receiver.js'
import { buildWeb, createTask, signUp } from './support.js'

const decode = (html: string) => html.replaceAll('&quot;', '"').replaceAll('&#39;', '\'').replaceAll('&amp;', '&')

tap.test('Activity lists what changed in your projects, newest first, a page at a time', async (t) => {
  const app = await buildWeb(t)
  const user = await signUp(app, 'active')
  for (let i = 0; i < 31; i++) await createTask(user, { title: `Chore ${i}` })
  const page = await user.client.get('/app/activity')
  t.equal(page.statusCode, 200)
  const body = decode(page.body)
  t.match(body, new RegExp(`${user.username}</span>\\s*created the task\\s*<a href="/app/tasks/[0-9a-f-]{36}">“Chore 30”</a>`), 'who did what, linked')
  t.ok(body.indexOf('“Chore 30”') < body.indexOf('“Chore 29”'), 'newest first')
  t.notMatch(body, /“Inbox”/, 'the Inbox\'s creation is on the next page')
  const older = /href="\/app\/activity\?before=([0-9-]+)" rel="next"/.exec(body)?.[1]
  t.ok(older, 'a link to older changes')
  const second = decode((await user.client.get(`/app/activity?before=${older!}`)).body)
  t.match(second, /created the project\s*“Inbox”/)
  t.notMatch(second, /rel="next"/, 'and no more')
  const beyond = await user.client.get('/app/activity?before=1-9999999999999999999')
  t.equal(beyond.statusCode, 200, 'a place the database cannot hold is ignored: the first page')
  t.match(decode(beyond.body), /“Chore 30”/)
})

tap.test('Webhooks: create (the secret once), ping, deliveries, retry, rotate, turn off, delete', async (t) => {
  const app = await buildWeb(t, { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' })
  const receiver = await startReceiver()
  t.teardown(receiver.close)
  const user = await signUp(app, 'hooker')
  await user.client.get('/app/webhooks')

  const refused = await user.client.post('/app/webhooks', { url: 'ftp://example.com/x', events: ['*'], project_id: '' })
  t.equal(refused.statusCode, 400)
  t.match(decode(refused.body), /This address cannot be used: the URL must be https/)
  const none = await user.client.post('/app/webhooks', { url: receiver.url, project_id: '' })
  t.match(decode(none.body), /Choose the changes to send/)

  const created = await user.client.post('/app/webhooks', { url: receiver.url, events: ['task.created'], project_id: '', description: 'Chat' })
  t.equal(created.statusCode, 201)
  const secret = /id="new-secret"[^>]*value="(whsec_[^"]+)"/.exec(created.body)?.[1]
  t.ok(secret, 'the secret is shown')
  const id = /href="\/app\/webhooks\/([0-9a-f-]{36})"/.exec(created.body)![1]!
  t.notOk((await user.client.get('/app/webhooks')).body.includes(secret!), 'and never again')

  await createTask(user, { title: 'Hooked by a page' })
  t.equal((await user.client.post(`/app/webhooks/${id}/ping`)).statusCode, 303)
  await receiver.waitFor(2)
  let show = ''
  for (let i = 0; i < 100 && (show.match(/Delivered \(200\)/g) ?? []).length < 2; i++) {
    show = decode((await user.client.get(`/app/webhooks/${id}`)).body)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal((show.match(/Delivered \(200\)/g) ?? []).length, 2, 'both deliveries listed')
  t.match(show, /<code>webhook\.ping<\/code>/)

  const deliveryId = /action="\/app\/webhooks\/[0-9a-f-]{36}\/deliveries\/([0-9a-f-]{36})\/retry"/.exec(show)![1]!
  t.equal((await user.client.post(`/app/webhooks/${id}/deliveries/${deliveryId}/retry`)).statusCode, 303)
  await receiver.waitFor(3)

  const rotated = await user.client.post(`/app/webhooks/${id}/rotate-secret`)
  const newSecret = /id="new-secret"[^>]*value="(whsec_[^"]+)"/.exec(rotated.body)?.[1]
  t.ok(newSecret !== undefined && newSecret !== secret, 'a new secret, shown once')

  await user.client.post(`/app/webhooks/${id}/enabled`, { enabled: 'false' })
  t.match((await user.client.get(`/app/webhooks/${id}`)).body, /<dt>State<\/dt><dd>Off/)
  t.equal((await user.client.post(`/app/webhooks/${id}/delete`)).statusCode, 303)
  t.equal((await user.client.get(`/app/webhooks/${id}`)).statusCode, 404)
})
