/**
 * Webhook signing secrets across a rotation of the root secret: sealed again under the new root as
 * they are used, so the old root can be dropped; and a secret no configured root opens fails its
 * attempts with a reason instead of stopping every delivery.
 */
import tap from 'tap'
import { eq } from 'drizzle-orm'
import { Webhook as Verifier } from 'standardwebhooks'
import { webhooks } from '../../src/db/schema.js'
import { build, createUser, injectAs } from '../helper.js'
import { startReceiver } from './receiver.js'

const [oldRoot, newRoot, foreignRoot] = ['o'.repeat(40), 'n'.repeat(40), 'f'.repeat(40)]
const settings = { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_RETRY_SCHEDULE: '60', WEBHOOK_TIMEOUT_MS: '2000' }

tap.test('a webhook secret sealed under the old root is sealed again, and the old root can go', async (t) => {
  const receiver = await startReceiver()
  t.teardown(receiver.close)
  const before = await build(t, { SECRET_KEY: oldRoot, WEBHOOK_DELIVERY: 'false', ...settings })
  const user = await createUser(before, 'rotation')
  const created = await injectAs(before, user, { method: 'POST', url: '/v1/webhooks', payload: { url: receiver.url, events: ['*'] } })
  const webhook = created.json<{ id: string, secret: string }>()
  const stored = async () => (await before.db.select({ secret: webhooks.secret }).from(webhooks).where(eq(webhooks.id, webhook.id)))[0]!.secret
  const underOld = await stored()

  const during = await build(t, { SECRET_KEY: newRoot, SECRET_KEY_PREVIOUS: oldRoot, ...settings })
  t.equal((await injectAs(during, user, { method: 'POST', url: `/v1/webhooks/${webhook.id}/ping` })).statusCode, 202)
  const [first] = await receiver.waitFor(1)
  t.doesNotThrow(() => new Verifier(webhook.secret).verify(first!.body, first!.headers as Record<string, string>), 'signed with the webhook\'s secret')
  t.not(await stored(), underOld, 'sealed again, under the new root')
  await during.close()

  const after = await build(t, { SECRET_KEY: newRoot, ...settings })
  t.equal((await injectAs(after, user, { method: 'POST', url: `/v1/webhooks/${webhook.id}/ping` })).statusCode, 202)
  const [, second] = await receiver.waitFor(2)
  t.doesNotThrow(() => new Verifier(webhook.secret).verify(second!.body, second!.headers as Record<string, string>), 'still signed right once the old root is gone')
  await after.close()

  const lost = await build(t, { SECRET_KEY: foreignRoot, ...settings })
  t.equal((await injectAs(lost, user, { method: 'POST', url: `/v1/webhooks/${webhook.id}/ping` })).statusCode, 202)
  let failed: { status: string, error: string | null } | undefined
  for (const deadline = Date.now() + 10_000; failed === undefined && Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 50))) {
    const items = (await injectAs(lost, user, { method: 'GET', url: `/v1/webhooks/${webhook.id}/deliveries?limit=10` })).json<{ items: Array<{ status: string, error: string | null }> }>().items
    failed = items.find((d) => d.error !== null)
  }
  t.match(failed, { error: /signing secret cannot be read/ }, 'a secret no root opens fails its attempt, with the reason')
  t.equal(receiver.received.length, 2, 'and nothing unsigned is sent')
})
