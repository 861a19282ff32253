import { Webhook, WebhookVerificationError } from 'standardwebhooks'
import type { EventType } from './generated/openapi.js'

/** The body of a webhook delivery. */
export interface WebhookEvent {
  type: EventType | 'webhook.ping'
  /** When the change was made (RFC 3339). */
  timestamp: string
  /** The resource after the change, as the API returns it; `{id}` for a deletion; `{webhook_id}` for a ping. */
  data: Record<string, unknown>
}

export { WebhookVerificationError }

type HeaderSource = Headers | Record<string, string | string[] | undefined>

function header (headers: HeaderSource, name: string): string {
  const value = headers instanceof Headers ? headers.get(name) : headers[name]
  if (typeof value !== 'string') throw new WebhookVerificationError(`Missing the ${name} header`)
  return value
}

/**
 * Checks that a webhook delivery comes from the service (Standard Webhooks): its signature, made
 * with `secret` (`whsec_…`; during a rotation either secret verifies), over `webhook-id`,
 * `webhook-timestamp` and the body exactly as received, and a timestamp within five minutes of now.
 * Returns the parsed body; throws WebhookVerificationError otherwise. Pass the raw body, before any
 * JSON parsing. Use `webhook-id` to drop the repeats that retries can bring.
 */
export function verifyWebhook (secret: string, headers: HeaderSource, rawBody: string | Uint8Array): WebhookEvent {
  return new Webhook(secret).verify(rawBody, {
    'webhook-id': header(headers, 'webhook-id'),
    'webhook-timestamp': header(headers, 'webhook-timestamp'),
    'webhook-signature': header(headers, 'webhook-signature'),
  }) as WebhookEvent
}
