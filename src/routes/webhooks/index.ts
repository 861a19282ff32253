import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import { problem } from '../../errors.js'
import { checkOutboundUrl, RefusedDestination } from '../../lib/outbound-guard.js'
import { createPaging } from '../../lib/paging.js'
import { deliveryList } from '../../repositories/webhooks.js'
import { IdParams, jsonResponse, noContent, problemResponses } from '../../schemas/common.js'
import {
  DeliveryListQuery, DeliveryPage, DeliveryParams, Webhook, WebhookCreate, WebhookCreated, WebhookList, WebhookPatch, WebhookSecret,
} from '../../schemas/webhooks.js'

const read = { auth: { scopes: ['tasks:read' as const] } }
const write = { auth: { scopes: ['tasks:write' as const] } }
const tags = ['webhooks']
const accepted = noContent('Queued: the attempt is made at once, and shows in the deliveries.')

const webhooksRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, opts) => {
  const webhooks = app.webhooksRepository
  const deliveryPaging = createPaging(deliveryList, { keys: app.keys.keysFor('deliveriesCursor') })
  const allowPrivate = opts.config.WEBHOOK_ALLOW_PRIVATE_NETWORKS

  /** The URL, refused as 422 unless it may be called (the same check is made again at each delivery). */
  const checked = async (url: string): Promise<void> => {
    try {
      await checkOutboundUrl(url, allowPrivate)
    } catch (err) {
      if (!(err instanceof RefusedDestination)) throw err
      throw problem('WEBHOOK_URL_REFUSED', `The URL is refused: ${err.message}.`, { errors: [{ in: 'body', path: '/url', message: err.message }] })
    }
  }

  app.post('', {
    config: write,
    schema: {
      operationId: 'createWebhook',
      summary: 'Create a webhook',
      description: [
        'From now on, the events of your projects (or of `project_id` alone) whose type is in `events` are POSTed to `url`, signed per Standard Webhooks:',
        '`webhook-id` (the event id, the same on every attempt), `webhook-timestamp` and `webhook-signature` (`v1,<base64 HMAC-SHA256>` of',
        '`{webhook-id}.{webhook-timestamp}.{body}`, keyed with the secret\'s bytes after `whsec_`). The body is `{type, timestamp, data}`, `data` being the',
        'event\'s resource. An answer other than 2xx within `WEBHOOK_TIMEOUT_MS` (10 s) is retried on `WEBHOOK_RETRY_SCHEDULE`; `Retry-After` on 429 and',
        '503 is honoured; redirects are not followed; 410 turns the webhook off. The `secret` is returned this once.',
      ].join(' '),
      tags,
      body: Type.Ref(WebhookCreate),
      response: {
        201: jsonResponse('The webhook, with its secret (shown this once).', Type.Ref(WebhookCreated), 'Location'),
        ...problemResponses(400, 404, 413, 415, 422, 429, 500, 503),
      },
    },
  }, async (request, reply) => {
    const body = request.body as WebhookCreate
    await checked(body.url)
    const { webhook, secret } = await webhooks.create(request.auth!.userId, body)
    return reply.code(201).header('location', `/v1/webhooks/${webhook.id}`).send({ ...webhook, secret })
  })

  app.get('', {
    config: read,
    schema: {
      operationId: 'listWebhooks',
      summary: 'List your webhooks',
      description: 'Your webhooks, newest first (a user has at most 50). Secrets are never shown again.',
      tags,
      response: { 200: jsonResponse('Your webhooks.', Type.Ref(WebhookList)), ...problemResponses(429, 500, 503) },
    },
  }, async (request) => ({ items: await webhooks.list(request.auth!.userId) }))

  app.get('/:id', {
    config: read,
    schema: {
      operationId: 'getWebhook',
      summary: 'Get a webhook',
      description: 'One of your webhooks (anyone else\'s is a 404).',
      tags,
      params: IdParams,
      response: { 200: jsonResponse('The webhook.', Type.Ref(Webhook)), ...problemResponses(400, 404, 414, 429, 500, 503) },
    },
  }, async (request) => await webhooks.get(request.auth!.userId, request.params.id))

  app.patch('/:id', {
    config: write,
    schema: {
      operationId: 'updateWebhook',
      summary: 'Change a webhook',
      description: 'A JSON merge patch (RFC 7396), sent as `application/merge-patch+json` or `application/json`. A new `url` is checked as at creation. Turning it off cancels the attempts still to come; turning it back on sends the events from then on.',
      tags,
      params: IdParams,
      body: { content: { 'application/merge-patch+json': { schema: Type.Ref(WebhookPatch) }, 'application/json': { schema: Type.Ref(WebhookPatch) } } },
      response: { 200: jsonResponse('The webhook, changed.', Type.Ref(Webhook)), ...problemResponses(400, 404, 413, 414, 415, 422, 429, 500, 503) },
    },
  }, async (request) => {
    const patch = request.body as WebhookPatch
    if (patch.url !== undefined) await checked(patch.url)
    return await webhooks.update(request.auth!.userId, request.params.id, patch)
  })

  app.delete('/:id', {
    config: write,
    schema: {
      operationId: 'deleteWebhook',
      summary: 'Delete a webhook',
      description: 'Deletes the webhook and its deliveries; attempts under way may still arrive.',
      tags,
      params: IdParams,
      response: { 204: noContent('Deleted.'), ...problemResponses(400, 404, 414, 429, 500, 503) },
    },
  }, async (request, reply) => {
    await webhooks.remove(request.auth!.userId, request.params.id)
    return reply.code(204).send(null)
  })

  app.post('/:id/ping', {
    config: write,
    schema: {
      operationId: 'pingWebhook',
      summary: 'Send a test event',
      description: 'Queues a `webhook.ping` event (`data`: `{webhook_id}`, `webhook-id`: `ping_…`), delivered and retried like any other, also while the webhook is off.',
      tags,
      params: IdParams,
      response: { 202: accepted, ...problemResponses(400, 404, 414, 429, 500, 503) },
    },
  }, async (request, reply) => {
    await webhooks.ping(request.auth!.userId, request.params.id)
    app.wakeWebhooks()
    return reply.code(202).send(null)
  })

  app.post('/:id/rotate-secret', {
    config: write,
    schema: {
      operationId: 'rotateWebhookSecret',
      summary: 'Rotate a webhook\'s secret',
      description: 'Returns a new secret. For 24 hours deliveries carry two signatures, space-separated in `webhook-signature`: one with the new secret and one with the old, so the receiver can switch at its pace.',
      tags,
      params: IdParams,
      response: { 200: jsonResponse('The new secret (shown this once).', Type.Ref(WebhookSecret)), ...problemResponses(400, 404, 414, 429, 500, 503) },
    },
  }, async (request) => ({ secret: await webhooks.rotateSecret(request.auth!.userId, request.params.id) }))

  app.get('/:id/deliveries', {
    config: read,
    schema: {
      operationId: 'listWebhookDeliveries',
      summary: 'List a webhook\'s delivery attempts',
      description: 'Every attempt, newest first, one page at a time: those made (with the receiver\'s status, the error and the first bytes of its answer) and those to come.',
      tags,
      params: IdParams,
      querystring: DeliveryListQuery,
      response: { 200: jsonResponse('One page of attempts.', Type.Ref(DeliveryPage), 'Link'), ...problemResponses(400, 404, 414, 429, 500, 503) },
    },
  }, async (request, reply) => {
    const userId = request.auth!.userId
    const list = deliveryPaging.open(`${userId}:${request.params.id}`, request.query)
    return deliveryPaging.respond(reply, list, request.url, await webhooks.deliveries(userId, request.params.id, list))
  })

  app.post('/:id/deliveries/:delivery_id/retry', {
    config: write,
    schema: {
      operationId: 'retryWebhookDelivery',
      summary: 'Deliver an event again',
      description: 'Delivers the attempt\'s event again, now: the attempt still to come is brought forward, or a new one follows the last (also after the retries ran out). The webhook must be on (409 `WEBHOOK_DISABLED` otherwise).',
      tags,
      params: DeliveryParams,
      response: { 202: accepted, ...problemResponses(400, 404, 409, 414, 429, 500, 503) },
    },
  }, async (request, reply) => {
    await webhooks.retry(request.auth!.userId, request.params.id, request.params.delivery_id)
    app.wakeWebhooks()
    return reply.code(202).send(null)
  })
}

// Encapsulated (its routes are its own); named so that its dependencies are checked when it is registered.
export default fp(webhooksRoutes, { name: 'webhooks-routes', encapsulate: true, dependencies: ['repositories', 'authorize', 'webhook-delivery'] })
