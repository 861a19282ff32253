import { type Static, Type } from '@sinclair/typebox'
import { Nullable, Page, Timestamp, Uuid } from './common.js'
import { EventType } from './events.js'

const WebhookUrl = Type.String({
  format: 'uri',
  minLength: 1,
  maxLength: 2048,
  description: 'Where events are POSTed: `https`, on a host whose every address is public (not loopback, private, link-local or a metadata address), checked now and at each delivery; else 422 `WEBHOOK_URL_REFUSED`. The operator may allow private networks and `http` for development (`WEBHOOK_ALLOW_PRIVATE_NETWORKS`).',
  example: 'https://hooks.example.com/tasks',
})

const WebhookEvents = Type.Array(Type.Union([EventType, Type.Literal('*')]), {
  minItems: 1,
  maxItems: 20,
  uniqueItems: true,
  description: 'The event types to send, or `["*"]` for all of them.',
  example: ['task.created', 'task.updated'],
})

const Description = Nullable(Type.String({ maxLength: 500 }), { description: 'What the webhook is for.', example: 'Mirror to the team chat' })

const webhookExample = {
  id: '2b1f4a0e-6c3d-4e5f-8a9b-0c1d2e3f4a5b',
  url: 'https://hooks.example.com/tasks',
  events: ['task.created', 'task.updated'],
  project_id: null,
  enabled: true,
  disabled_reason: null,
  description: 'Mirror to the team chat',
  created_at: '2026-11-23T09:30:00.000Z',
  updated_at: '2026-11-23T09:30:00.000Z',
}
const secretExample = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
const Secret = Type.String({
  pattern: '^whsec_[A-Za-z0-9+/]+={0,2}$',
  description: 'The signing secret, shown this once: `whsec_` and the base64 of 32 random bytes. Verify each delivery\'s `webhook-signature` with it (Standard Webhooks).',
  example: secretExample,
})

const webhookFields = {
  id: Uuid,
  url: WebhookUrl,
  events: WebhookEvents,
  project_id: Nullable(Uuid, { description: 'The one project whose events are sent; null for every project you are a member of.' }),
  enabled: Type.Boolean({ description: 'Whether events are sent. The service turns it off when the receiver answers 410 Gone, or after 5 days of failed attempts (see `disabled_reason`); events while it is off are not sent later.' }),
  disabled_reason: Nullable(Type.String(), { description: 'Why the service turned the webhook off; null when it is on or you turned it off.', example: null }),
  description: Description,
  created_at: Timestamp,
  updated_at: Timestamp,
}

export const Webhook = Type.Object(webhookFields, {
  $id: 'Webhook',
  title: 'Webhook',
  description: 'An endpoint that is sent the events of your projects as they happen, signed per Standard Webhooks.',
  example: webhookExample,
})
export type Webhook = Static<typeof Webhook>

export const WebhookCreated = Type.Object({ ...webhookFields, secret: Secret }, {
  $id: 'WebhookCreated',
  title: 'WebhookCreated',
  description: 'A new webhook, with its signing secret: store it now, it is never shown again (rotate it to get a new one).',
  example: { ...webhookExample, secret: secretExample },
})

export const WebhookCreate = Type.Object({
  url: WebhookUrl,
  events: WebhookEvents,
  project_id: Type.Optional(Nullable(Uuid, { description: 'Only this project\'s events (you must be a member: else 404 `PROJECT_NOT_FOUND`); omitted or null for every project you are a member of, now and later.' })),
  description: Type.Optional(Description),
}, {
  $id: 'WebhookCreate',
  title: 'WebhookCreate',
  additionalProperties: false,
  description: 'A webhook to create. It is sent the events that happen from its creation on, those you may see when each is delivered.',
  example: { url: webhookExample.url, events: webhookExample.events, description: webhookExample.description },
})
export type WebhookCreate = Static<typeof WebhookCreate>

export const WebhookPatch = Type.Object({
  url: Type.Optional(WebhookUrl),
  events: Type.Optional(WebhookEvents),
  enabled: Type.Optional(Type.Boolean({ description: 'Turn it off, or back on (which also clears `disabled_reason`). Turning it off cancels the attempts still to come.' })),
  description: Type.Optional(Description),
}, {
  $id: 'WebhookPatch',
  title: 'WebhookPatch',
  additionalProperties: false,
  minProperties: 1,
  description: 'Fields to change (JSON merge patch). Unknown fields are refused.',
  example: { enabled: false },
})
export type WebhookPatch = Static<typeof WebhookPatch>

export const WebhookList = Type.Object({
  items: Type.Array(Type.Ref(Webhook), { description: 'Your webhooks, newest first (at most 50).' }),
}, { $id: 'WebhookList', title: 'WebhookList', description: 'Your webhooks.', example: { items: [webhookExample] } })

export const WebhookSecret = Type.Object({ secret: Secret }, {
  $id: 'WebhookSecret',
  title: 'WebhookSecret',
  description: 'The new signing secret. For 24 hours deliveries carry two signatures, one with each secret, so receivers can switch over.',
  example: { secret: secretExample },
})

const deliveryExample = {
  id: '0e9d8c7b-6a5f-4e3d-8c2b-1a0f9e8d7c6b',
  event_id: '7345-1042',
  event_type: 'task.created',
  attempt: 2,
  status: 'failed',
  status_code: 503,
  error: 'the receiver answered 503',
  duration_ms: 41,
  response_excerpt: 'Service Unavailable',
  attempted_at: '2026-11-23T09:30:05.120Z',
  next_attempt_at: '2026-11-23T09:35:04.000Z',
  created_at: '2026-11-23T09:30:05.000Z',
}

export const Delivery = Type.Object({
  id: Uuid,
  event_id: Type.String({ description: 'The event\'s id, sent as `webhook-id` (the same on every attempt); `ping_…` for a ping.', example: '7345-1042' }),
  event_type: Type.String({ description: 'The event\'s type, or `webhook.ping`.', example: 'task.created' }),
  attempt: Type.Integer({ minimum: 1, description: 'Which attempt at this event this is, from 1.', example: 2 }),
  status: Type.Union([Type.Literal('pending'), Type.Literal('succeeded'), Type.Literal('failed'), Type.Literal('cancelled')], {
    description: '`pending`: not made yet (due at `next_attempt_at`); `succeeded`: the receiver answered 2xx; `failed`: anything else, a timeout or a connection error (retried at `next_attempt_at` unless null); `cancelled`: not made, the webhook having been turned off or the event no longer yours to see.',
    example: 'failed',
  }),
  status_code: Nullable(Type.Integer(), { description: 'The receiver\'s HTTP status; null when it did not answer.', example: 503 }),
  error: Nullable(Type.String(), { description: 'What went wrong, for people.', example: 'the receiver answered 503' }),
  duration_ms: Nullable(Type.Integer(), { description: 'How long the attempt took.', example: 41 }),
  response_excerpt: Nullable(Type.String(), { description: 'The first 1 024 bytes of the receiver\'s answer, as text.', example: 'Service Unavailable' }),
  attempted_at: Nullable(Timestamp, { description: 'When the attempt was made; null while pending.' }),
  next_attempt_at: Nullable(Timestamp, { description: 'When this attempt is due (pending), or when the next one is (failed); null when none is to come.' }),
  created_at: Timestamp,
}, {
  $id: 'Delivery',
  title: 'Delivery',
  description: 'One delivery attempt of an event to a webhook.',
  example: deliveryExample,
})
export type Delivery = Static<typeof Delivery>

export const DeliveryPage = Page(Delivery, {
  items: { description: 'At most `limit` attempts, newest first.' },
  nextCursor: { description: 'Pass as `cursor` to get the next page (also sent in the `Link` header); null on the last page.', example: null },
  $id: 'DeliveryPage',
  title: 'DeliveryPage',
  description: 'One page of a webhook\'s delivery attempts, newest first.',
  example: { items: [deliveryExample], next_cursor: null },
})

export const DeliveryListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Page size, 1 to 100.', example: 20 })),
  cursor: Type.Optional(Type.String({
    minLength: 1,
    maxLength: 2048,
    pattern: '^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$',
    description: 'Opaque `next_cursor` of the previous page; only for you and this webhook (else 400 `INVALID_CURSOR`).',
  })),
}, { additionalProperties: false })
export type DeliveryListQuery = Static<typeof DeliveryListQuery>

export const DeliveryParams = Type.Object({
  id: Type.String({ format: 'uuid', description: 'The webhook\'s id.' }),
  delivery_id: Type.String({ format: 'uuid', description: 'The delivery attempt\'s id.' }),
}, { additionalProperties: false })
export type DeliveryParams = Static<typeof DeliveryParams>
