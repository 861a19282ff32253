import { randomBytes, randomUUID } from 'node:crypto'
import { and, desc, eq, sql } from 'drizzle-orm'
import { type Database, type DatabaseHandle, queryRows, sqlStatement } from '../db/client.js'
import { webhookDeliveries, webhooks, type WebhookDeliveryRow, type WebhookRow } from '../db/schema.js'
import { problem } from '../errors.js'
import type { PagedList, Position, ListRequest } from '../lib/paging.js'
import { openSealed, sealSecret } from '../lib/secret-box.js'
import { activeTraceparent } from '../lib/tracing.js'
import type { Delivery, Webhook, WebhookCreate, WebhookPatch } from '../schemas/webhooks.js'
import { eventsOf, feedColumns, type FeedRow } from './events.js'
import { isMember } from './membership.js'

/**
 * Webhooks and their deliveries (docs/decisions/0030-webhook-delivery.md): the endpoints of a user,
 * the dispatch of the change feed's events into a durable queue of attempts, and the claiming and
 * recording of those attempts by any instance.
 */

export const deliveryList: PagedList<Record<never, never>, 'created_at'> = { filters: {}, defaultSort: 'created_at', defaultLimit: 20 }

/** At most this many webhooks per user. */
export const MAX_WEBHOOKS = 50
/** How long a rotated-out secret still signs. */
const PREVIOUS_SECRET_HOURS = 24
/** A webhook whose every attempt has failed for this long is turned off. */
const FAILING_DAYS = 5

const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`
const iso = (date: Date | null) => date === null ? null : date.toISOString()

export function toWebhook (row: WebhookRow): Webhook {
  return {
    id: row.id,
    url: row.url,
    events: row.events as Webhook['events'],
    project_id: row.projectId,
    enabled: row.enabled,
    disabled_reason: row.disabledReason,
    description: row.description,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  }
}

function toDelivery (row: WebhookDeliveryRow): Delivery {
  return {
    id: row.id,
    event_id: row.eventId,
    event_type: row.eventType,
    attempt: row.attempt,
    status: row.status,
    status_code: row.statusCode,
    error: row.error,
    duration_ms: row.durationMs,
    response_excerpt: row.responseExcerpt,
    attempted_at: iso(row.attemptedAt),
    next_attempt_at: iso(row.nextAttemptAt),
    created_at: row.createdAt.toISOString(),
  }
}

/** A claimed attempt, with what making it needs. */
export interface ClaimedAttempt {
  id: string
  webhook_id: string
  event_id: string
  event_type: string
  payload: string
  attempt: number
  /** The trace context of the change that caused the event (or of the request that queued a ping or retry). */
  traceparent: string | null
  /** The lease, as the database wrote it: recording the outcome requires it still to be ours. */
  lease: string
  url: string
  /**
   * The secrets to sign with, decrypted: the current one, and the previous one within a day of a
   * rotation. Empty when the current one was sealed under a root this service no longer has.
   */
  secrets: string[]
  enabled: boolean
  /** Whether the owner may still see the event: still a member (or the former member it is about), and not disabled. */
  visible: boolean
}

/** What an attempt came to. */
export interface AttemptOutcome {
  status: 'succeeded' | 'failed' | 'cancelled'
  statusCode: number | null
  error: string | null
  durationMs: number | null
  responseExcerpt: string | null
  attemptedAt: Date | null
  /** When to try again; null for no retry. */
  retryAt: Date | null
  /** Turn the webhook off, saying why (410 Gone). */
  disable?: string
}

interface DispatchRow extends FeedRow {
  traceparent: string | null
  matches: Array<{ webhook: string, former: boolean }> | null
}

/** The dispatcher's place in the feed. */
interface DispatchPlace { txid: string, id: string }

type ClaimRow = Omit<ClaimedAttempt, 'secrets'> & { secret: string, previous_secret: string | null }

/** How often a dispatch pass runs while no webhook is on (see `dispatch`). */
const IDLE_PASS_MS = 1_000

export function createWebhooksRepository ({ db, compile }: DatabaseHandle, secretKeys: Buffer[]) {
  // The statements every wake-up of the dispatcher runs (after each burst of writes), prepared once.
  // Taking the place also has the transaction's statements run on their generic plans: the read's
  // estimate for a place it is given beats the one for any place, so PostgreSQL would plan it anew
  // at every wake-up, for the same plan (docs/decisions/0030-webhook-delivery.md).
  const lockPlaceStatement = compile<DispatchPlace>((executor) => sqlStatement(executor, () => sql`
    select txid::text as txid, id::text as id, set_config('plan_cache_mode', 'force_generic_plan', true) as plan_cache_mode
    from webhook_dispatch for update skip locked`))
  // The events after the place that are final (below the horizon), each with the webhooks that are to get it.
  const dispatchReadStatement = compile<DispatchRow>((executor) => sqlStatement(executor, (value) => sql`
    with h as (select pg_snapshot_xmin(pg_current_snapshot()) as horizon)
    select ${feedColumns('ev')}, ev.traceparent, h.horizon::text as horizon, null as purged_txid, null as purged_id,
      (select jsonb_agg(jsonb_build_object('webhook', m.id, 'former', m.former)) from (
         select w.id, false as former from project_members pm join webhooks w on w.owner_id = pm.user_id
         where pm.project_id = ev.project_id and w.enabled and w.created_at <= ev.occurred_at
           and (w.project_id is null or w.project_id = ev.project_id) and w.events && array['*', ev.type::text]
         union
         select w.id, true from webhooks w
         where w.owner_id = any(ev.audience) and w.enabled and w.created_at <= ev.occurred_at
           and not exists (select 1 from project_members pm where pm.project_id = ev.project_id and pm.user_id = w.owner_id)
           and (w.project_id is null or w.project_id = ev.project_id) and w.events && array['*', ev.type::text]
       ) m) as matches
    from h left join lateral (
      select * from events e
      where (e.txid, e.id) > (${value('txid')}::xid8, ${value('id')}::bigint) and e.txid < h.horizon
        and exists (select 1 from webhooks where enabled)
      order by e.txid, e.id limit ${value('limit')}::int
    ) ev on true
    order by ev.txid, ev.id`))
  // Whether a pass has anything to do: final events after the place, and an enabled webhook to get
  // them. Read outside the pass's transaction, so that a pass with nothing to do locks and writes
  // nothing, and costs the writes no commit.
  const dueStatement = compile<{ enabled: boolean, behind: boolean }>((executor) => sqlStatement(executor, () => sql`
    select exists (select 1 from webhooks where enabled) as enabled,
      exists (select 1 from webhook_dispatch d cross join lateral (
        select 1 from events e where (e.txid, e.id) > (d.txid, d.id) and e.txid < pg_snapshot_xmin(pg_current_snapshot())
        order by e.txid, e.id limit 1) next) as behind`))
  let lastIdlePass = 0
  const movePlaceStatement = compile<never>((executor) => sqlStatement(executor, (value) => sql`
    update webhook_dispatch set txid = ${value('txid')}::xid8, id = ${value('id')}::bigint`))
  const claimStatement = compile<ClaimRow>((executor) => sqlStatement(executor, (value) => sql`
    with due as (
      select d.id from webhook_deliveries d
      where d.status = 'pending' and d.next_attempt_at <= now() and (d.leased_until is null or d.leased_until < now())
      order by d.next_attempt_at limit ${value('limit')}::int for update skip locked
    )
    update webhook_deliveries d set leased_until = clock_timestamp() + ${value('lease_ms')}::int * interval '1 millisecond'
    from due, webhooks w
    where d.id = due.id and w.id = d.webhook_id
    returning d.id, d.webhook_id, d.event_id, d.event_type, d.payload, d.attempt, d.traceparent, d.leased_until::text as lease,
      w.url, w.secret, case when w.previous_secret_expires_at > now() then w.previous_secret end as previous_secret, w.enabled,
      (d.project_id is null or d.about_former_member or ${isMember(sql`d.project_id`, sql`w.owner_id`)})
        and not exists (select 1 from users u where u.id = w.owner_id and u.disabled) as visible`))

  const owned = (userId: string, id: string) => and(eq(webhooks.id, id), eq(webhooks.ownerId, userId))

  async function get (userId: string, id: string): Promise<WebhookRow> {
    const [row] = await db.select().from(webhooks).where(owned(userId, id))
    if (row === undefined) throw problem('WEBHOOK_NOT_FOUND', `No webhook ${id}.`)
    return row
  }

  async function cancelPending (executor: Database, webhookId: string, reason: string): Promise<void> {
    await executor.update(webhookDeliveries).set({ status: 'cancelled', error: reason, nextAttemptAt: null, leasedUntil: null })
      .where(and(eq(webhookDeliveries.webhookId, webhookId), eq(webhookDeliveries.status, 'pending')))
  }

  return {
    async create (userId: string, values: WebhookCreate): Promise<{ webhook: Webhook, secret: string }> {
      const projectId = values.project_id ?? null
      const secret = newSecret()
      const rows = await queryRows<{ id: string, refused: string | null }>(db, sql`
        with allowed as (
          select case
            when ${projectId}::uuid is not null and not ${isMember(sql`${projectId}::uuid`, sql`${userId}::uuid`)} then 'project'
            when (select count(*) from webhooks w where w.owner_id = ${userId}::uuid) >= ${MAX_WEBHOOKS} then 'limit'
          end as refused
        ), created as (
          insert into webhooks (owner_id, project_id, url, events, description, secret)
          select ${userId}::uuid, ${projectId}::uuid, ${values.url}, ${sql.param(values.events)}::text[], ${values.description ?? null}, ${sealSecret(secret, secretKeys)}
          from allowed where refused is null
          returning id
        )
        select (select id from created) as id, (select refused from allowed) as refused`)
      const [result] = rows
      if (result?.refused === 'project') throw problem('PROJECT_NOT_FOUND', `No project ${projectId}.`)
      if (result?.refused === 'limit') throw problem('VALIDATION_FAILED', `You have ${MAX_WEBHOOKS} webhooks already: delete one first.`)
      return { webhook: toWebhook(await get(userId, result!.id)), secret }
    },

    async list (userId: string): Promise<Webhook[]> {
      const rows = await db.select().from(webhooks).where(eq(webhooks.ownerId, userId)).orderBy(desc(webhooks.createdAt), desc(webhooks.id)).limit(MAX_WEBHOOKS)
      return rows.map(toWebhook)
    },

    async get (userId: string, id: string): Promise<Webhook> {
      return toWebhook(await get(userId, id))
    },

    async update (userId: string, id: string, patch: WebhookPatch): Promise<Webhook> {
      return await db.transaction(async (tx) => {
        const [row] = await tx.update(webhooks).set({
          ...(patch.url !== undefined ? { url: patch.url } : {}),
          ...(patch.events !== undefined ? { events: patch.events } : {}),
          ...(patch.description !== undefined ? { description: patch.description } : {}),
          ...(patch.enabled !== undefined ? { enabled: patch.enabled, disabledReason: null, failingSince: null } : {}),
          updatedAt: sql`now()`,
        }).where(owned(userId, id)).returning()
        if (row === undefined) throw problem('WEBHOOK_NOT_FOUND', `No webhook ${id}.`)
        if (patch.enabled === false) await cancelPending(tx, id, 'the webhook was turned off')
        return toWebhook(row)
      })
    },

    async remove (userId: string, id: string): Promise<void> {
      const deleted = await db.delete(webhooks).where(owned(userId, id)).returning({ id: webhooks.id })
      if (deleted.length === 0) throw problem('WEBHOOK_NOT_FOUND', `No webhook ${id}.`)
    },

    /** A new secret; the current one still signs, beside it, for a day. */
    async rotateSecret (userId: string, id: string): Promise<string> {
      const secret = newSecret()
      const [row] = await db.update(webhooks).set({
        previousSecret: sql`${webhooks.secret}`,
        previousSecretExpiresAt: sql`now() + ${PREVIOUS_SECRET_HOURS} * interval '1 hour'`,
        secret: sealSecret(secret, secretKeys),
        updatedAt: sql`now()`,
      }).where(owned(userId, id)).returning({ id: webhooks.id })
      if (row === undefined) throw problem('WEBHOOK_NOT_FOUND', `No webhook ${id}.`)
      return secret
    },

    /** Queues a `webhook.ping`, due now; its delivery id. */
    async ping (userId: string, id: string): Promise<string> {
      const webhook = await get(userId, id)
      const payload = JSON.stringify({ type: 'webhook.ping', timestamp: new Date().toISOString(), data: { webhook_id: webhook.id } })
      const [row] = await db.insert(webhookDeliveries).values({
        webhookId: webhook.id, eventId: `ping_${randomUUID()}`, eventType: 'webhook.ping', payload, attempt: 1, nextAttemptAt: sql`now()`, traceparent: activeTraceparent(),
      }).returning({ id: webhookDeliveries.id })
      return row!.id
    },

    async deliveries (userId: string, webhookId: string, request: ListRequest<Record<never, never>, 'created_at'>): Promise<{ items: Delivery[], next: Position | null }> {
      await get(userId, webhookId)
      const conditions = [eq(webhookDeliveries.webhookId, webhookId)]
      if (request.after !== undefined) {
        conditions.push(sql`(${webhookDeliveries.createdAt}, ${webhookDeliveries.id}) < (${request.after[0]}::timestamptz, ${request.after[1]}::uuid)`)
      }
      const rows = await db.select().from(webhookDeliveries).where(and(...conditions))
        .orderBy(desc(webhookDeliveries.createdAt), desc(webhookDeliveries.id)).limit(request.limit + 1)
      const items = rows.slice(0, request.limit).map(toDelivery)
      const last = rows.length > request.limit ? items[request.limit - 1]! : undefined
      return { items, next: last === undefined ? null : [last.created_at, last.id] }
    },

    /**
     * Delivers the attempt's event again, now: the attempt still to come is brought forward, or a
     * new one is queued after the last.
     */
    async retry (userId: string, webhookId: string, deliveryId: string): Promise<void> {
      const webhook = await get(userId, webhookId)
      if (!webhook.enabled) throw problem('WEBHOOK_DISABLED', 'The webhook is turned off: turn it on first.')
      await db.transaction(async (tx) => {
        const [delivery] = await tx.select().from(webhookDeliveries)
          .where(and(eq(webhookDeliveries.id, deliveryId), eq(webhookDeliveries.webhookId, webhookId))).for('update')
        if (delivery === undefined) throw problem('DELIVERY_NOT_FOUND', `No delivery ${deliveryId} of this webhook.`)
        const sameEvent = and(eq(webhookDeliveries.webhookId, webhookId), eq(webhookDeliveries.eventId, delivery.eventId))
        const brought = await tx.update(webhookDeliveries).set({ nextAttemptAt: sql`now()` })
          .where(and(sameEvent, eq(webhookDeliveries.status, 'pending'))).returning({ id: webhookDeliveries.id })
        if (brought.length > 0) return
        const [last] = await tx.select({ attempt: sql<number>`max(${webhookDeliveries.attempt})::int` }).from(webhookDeliveries).where(sameEvent)
        await tx.insert(webhookDeliveries).values({
          webhookId, eventId: delivery.eventId, eventType: delivery.eventType, projectId: delivery.projectId, aboutFormerMember: delivery.aboutFormerMember,
          payload: delivery.payload, attempt: (last?.attempt ?? delivery.attempt) + 1, nextAttemptAt: sql`now()`, traceparent: activeTraceparent(),
        })
      })
    },

    /**
     * Reads the next events of the feed after the dispatcher's place and queues an attempt for each
     * webhook that is to get it, moving the place in the same transaction: each event is queued once
     * per webhook, by whichever instance holds the dispatcher's row. Returns how many events were
     * read (0 when there was nothing to do), or undefined when another instance is dispatching.
     */
    async dispatch (limit: number): Promise<number | undefined> {
      const [state] = await dueStatement({})
      if (state?.behind !== true) return 0
      // With no webhook on, a pass only moves the place past events nobody is to get, so that a webhook
      // turned on later does not start from far behind; once per IDLE_PASS_MS is enough for that.
      if (!state.enabled) {
        if (Date.now() - lastIdlePass < IDLE_PASS_MS) return 0
        lastIdlePass = Date.now()
      }
      return await db.transaction(async (tx) => {
        const [place] = await lockPlaceStatement({}, tx)
        if (place === undefined) return undefined
        const from = [BigInt(place.txid), BigInt(place.id)] as const
        const rows = await dispatchReadStatement({ txid: place.txid, id: place.id, limit }, tx)
        const { events, next } = eventsOf(rows, from, limit)
        const queued = events.flatMap(({ event, row }) => (row.matches ?? []).map(({ webhook, former }) => ({
          webhookId: webhook,
          eventId: event.id,
          eventType: event.type,
          projectId: event.project_id,
          aboutFormerMember: former,
          payload: JSON.stringify({ type: event.type, timestamp: event.occurred_at, data: event.data }),
          attempt: 1,
          nextAttemptAt: sql`now()`,
          traceparent: row.traceparent,
        })))
        if (queued.length > 0) await tx.insert(webhookDeliveries).values(queued)
        await movePlaceStatement({ txid: next[0].toString(), id: next[1].toString() }, tx)
        return events.length
      })
    },

    /** Claims up to `limit` attempts that are due, for `leaseMs`: no other instance makes them meanwhile. */
    async claim (limit: number, leaseMs: number): Promise<ClaimedAttempt[]> {
      const rows = await claimStatement({ limit, lease_ms: leaseMs })
      const readable = (stored: string) => { try { return openSealed(stored, secretKeys) } catch { return undefined } }
      const claimed: ClaimedAttempt[] = []
      for (const { secret, previous_secret: previous, ...row } of rows) {
        const current = readable(secret)
        const before = previous === null ? undefined : readable(previous)
        // Sealed under a root since rotated: sealed again under the current one, unless changed meanwhile.
        if (current?.stale === true) {
          await db.update(webhooks).set({ secret: sealSecret(current.plain, secretKeys) }).where(and(eq(webhooks.id, row.webhook_id), eq(webhooks.secret, secret)))
        }
        claimed.push({ ...row, secrets: current === undefined ? [] : [current.plain, ...(before === undefined ? [] : [before.plain])] })
      }
      return claimed
    },

    /**
     * Records an attempt's outcome, if the lease is still ours (else another instance has taken the
     * attempt over, and its outcome counts), queues the retry, and keeps the webhook's health: a
     * success clears its failing streak; a failure starts one, and turns the webhook off once it has
     * lasted FAILING_DAYS; `disable` turns it off at once. Returns whether it was recorded.
     */
    async record (attempt: ClaimedAttempt, outcome: AttemptOutcome): Promise<boolean> {
      return await db.transaction(async (tx) => {
        const [done] = await tx.update(webhookDeliveries).set({
          status: outcome.status,
          statusCode: outcome.statusCode,
          error: outcome.error,
          durationMs: outcome.durationMs,
          responseExcerpt: outcome.responseExcerpt,
          attemptedAt: outcome.attemptedAt,
          nextAttemptAt: outcome.retryAt,
          leasedUntil: null,
        }).where(and(eq(webhookDeliveries.id, attempt.id), eq(webhookDeliveries.status, 'pending'), sql`${webhookDeliveries.leasedUntil} = ${attempt.lease}::timestamptz`))
          .returning()
        if (done === undefined) return false
        if (outcome.retryAt !== null) {
          await tx.insert(webhookDeliveries).values({
            webhookId: done.webhookId, eventId: done.eventId, eventType: done.eventType, projectId: done.projectId,
            aboutFormerMember: done.aboutFormerMember, payload: done.payload, attempt: done.attempt + 1, nextAttemptAt: outcome.retryAt, traceparent: done.traceparent,
          })
        }
        if (outcome.status === 'cancelled') return true
        const [webhook] = await tx.update(webhooks).set(outcome.status === 'succeeded'
          ? { failingSince: null }
          : {
              failingSince: sql`coalesce(${webhooks.failingSince}, now())`,
              enabled: sql`${webhooks.enabled} and ${outcome.disable === undefined} and coalesce(${webhooks.failingSince}, now()) > now() - ${FAILING_DAYS} * interval '1 day'`,
              disabledReason: sql`case when ${outcome.disable !== undefined} then ${outcome.disable ?? null}
                when coalesce(${webhooks.failingSince}, now()) <= now() - ${FAILING_DAYS} * interval '1 day' then ${`every attempt has failed for ${FAILING_DAYS} days`}
                else ${webhooks.disabledReason} end`,
            }).where(eq(webhooks.id, done.webhookId)).returning({ enabled: webhooks.enabled })
        if (webhook !== undefined && !webhook.enabled) await cancelPending(tx, done.webhookId, 'the webhook was turned off')
        return true
      })
    },

    /** Deletes the attempts made (or cancelled) more than `days` days ago; how many. */
    async purgeOlderThan (days: number): Promise<number> {
      const [row] = await queryRows<{ deleted: number }>(db, sql`
        with gone as (
          delete from webhook_deliveries where status <> 'pending' and created_at < now() - ${days}::int * interval '1 day' returning 1
        ) select count(*)::int as deleted from gone`)
      return row?.deleted ?? 0
    },

    /** The queue, for metrics: attempts due or waiting, and how long the oldest due one has waited. */
    async queueStats (): Promise<{ depth: number, oldestDueSeconds: number }> {
      const [row] = await queryRows<{ depth: number, oldest: number | null }>(db, sql`
        select count(*)::int as depth, extract(epoch from now() - min(next_attempt_at) filter (where next_attempt_at <= now()))::float8 as oldest
        from webhook_deliveries where status = 'pending'`)
      return { depth: row?.depth ?? 0, oldestDueSeconds: row?.oldest ?? 0 }
    },
  }
}

export type WebhooksRepository = ReturnType<typeof createWebhooksRepository>
