import { type SQL, sql } from 'drizzle-orm'
import { type Database, type DatabaseHandle, sqlStatement } from '../db/client.js'
import { events } from '../db/schema.js'
import { rfc3339FromPostgres } from '../db/timestamps.js'
import { activeTraceparent } from '../lib/tracing.js'
import type { Event, EventType } from '../schemas/events.js'
import { taskOf, type TaskRecord } from './task-query.js'

/**
 * The change feed: recording an event inside the transaction of its change, and reading the feed
 * of the projects a user is a member of, in an order later commits can never land behind
 * (docs/decisions/0028-gap-free-event-feed.md).
 */

/** An event of a change made in JS (projects and members), recorded in the change's transaction. */
export interface NewEvent {
  type: EventType
  actorId: string | null
  projectId: string
  /** The resource as the API shows it, or {id} for a deletion; `version` is left out. */
  data: Record<string, unknown>
  /** Former members the event is about (see the events table). */
  audience?: string[]
}

/** The resource without the version its ETag is made of, which the API does not show as a field. */
export function eventData<R extends { version: number }> (resource: R): Record<string, unknown> {
  const data: Record<string, unknown> = { ...resource }
  delete data.version
  return data
}

export async function recordEvents (tx: Database, rows: NewEvent[]): Promise<void> {
  if (rows.length === 0) return
  const traceparent = activeTraceparent()
  await tx.insert(events).values(rows.map((row) => ({
    type: row.type, actorId: row.actorId, projectId: row.projectId, data: row.data, audience: row.audience ?? null, traceparent,
  })))
}

/**
 * The INSERT of one event per row of `changed` (a CTE of a task statement that returns the task's
 * columns under their API names): the task write and its event are one statement. `data` is the
 * row as the statement returns it, its timestamps finished when the feed is read; for a deletion,
 * only the id. `audience`, an expression over the row, names former members the event is about;
 * `traceparent`, the request's trace context (`activeTraceparent`).
 */
export function taskEventInsert (type: EventType, actor: SQL, changed: string, traceparent: SQL, audience?: SQL): SQL {
  const table = sql.identifier(changed)
  const data = type === 'task.deleted' ? sql`jsonb_build_object('id', ${table}.id)` : sql`to_jsonb(${table}) - 'version'`
  return sql`insert into events (type, actor_id, project_id, data, audience, traceparent)
    select ${type}::event_type, ${actor}, ${table}.project_id, ${data}, ${audience ?? sql`null`}, ${traceparent}::text from ${table}`
}

/**
 * The columns of a FeedRow (but `horizon` and the purge mark) from an events row `e`, and its place
 * from `place` (`e` itself, or the scan that found it): timestamps as RFC 3339 text on both drivers.
 */
export function feedColumns (e: string, place = e): SQL {
  const [row, at] = [sql.identifier(e), sql.identifier(place)]
  return sql`${at}.txid::text as txid, ${at}.id::text as id, ${row}.type, replace(${row}.occurred_at::text, ' ', 'T') as occurred_at,
    ${row}.actor_id, ${row}.project_id, ${row}.data`
}

/** A place in the feed: the writing transaction and the order of writing, as `<txid>-<id>` (the Event schema's pattern). */
export type FeedPosition = readonly [txid: bigint, id: bigint]

export function parseFeedPosition (text: string): FeedPosition {
  const [txid, id] = text.split('-')
  return [BigInt(txid!), BigInt(id!)]
}

export const formatFeedPosition = ([txid, id]: FeedPosition) => `${txid}-${id}`

/**
 * Whether the database can hold the place: a text pattern bounds its digits, not its numbers (a
 * transaction id is at most 2⁶⁴ − 1, an event id 2⁶³ − 1), and a query with one past them fails.
 */
export const isStorablePosition = ([txid, id]: FeedPosition) => txid <= 2n ** 64n - 1n && id <= 2n ** 63n - 1n

/** Whether `a` comes before `b` in the feed. */
export const before = (a: FeedPosition, b: FeedPosition) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1])

export interface FeedRow {
  /** Null in the one row of a page without events. */
  txid: string | null
  id: string | null
  type: EventType | null
  occurred_at: string | null
  actor_id: string | null
  project_id: string | null
  data: Record<string, unknown> | null
  horizon: string
  purged_txid: string | null
  purged_id: string | null
}

/** The event's data as the API shows it: a task's timestamps are finished here, as the list does. */
function dataOf (type: EventType, data: Record<string, unknown>): Record<string, unknown> {
  if (type === 'task.created' || type === 'task.updated') return taskOf(data as unknown as TaskRecord)
  return data
}

/**
 * The events of a page's rows, with their positions, and where the next page starts. A short page
 * holds every final event there is: the next one can only come from a transaction at or after the
 * horizon, so resuming there skips nothing.
 */
export function eventsOf<R extends FeedRow> (rows: R[], from: FeedPosition, limit: number): { events: Array<{ event: Event, position: FeedPosition, row: R }>, next: FeedPosition } {
  const events: Array<{ event: Event, position: FeedPosition, row: R }> = []
  let last = from
  for (const row of rows) {
    if (row.id === null) continue
    last = [BigInt(row.txid!), BigInt(row.id)]
    events.push({
      position: last,
      row,
      event: {
        id: formatFeedPosition(last),
        type: row.type!,
        occurred_at: rfc3339FromPostgres(row.occurred_at!),
        actor_id: row.actor_id,
        project_id: row.project_id!,
        data: dataOf(row.type!, row.data!),
      },
    })
  }
  const horizon: FeedPosition = [BigInt(rows[0]!.horizon), 0n]
  return { events, next: events.length < limit && before(last, horizon) ? horizon : last }
}

/** An event of the whole feed, with the users among those asked about who may see it now. */
export interface FeedEvent {
  event: Event
  position: FeedPosition
  recipients: string[]
}

export function createEventsRepository ({ compile }: DatabaseHandle) {
  // A page of the caller's events after a position, with the feed's horizon (the oldest transaction
  // still running: only events of older ones are final) and the purge mark, in one statement. Each
  // of the caller's projects gives at most a page (one range scan of events_project_position_idx),
  // and so do the events about them in projects they have left; those are merged and cut to a page.
  const pageStatement = compile<FeedRow>((executor) => sqlStatement(executor, (value) => {
    const after = sql`(${value('after_txid')}::xid8, ${value('after_id')}::bigint)`
    const limit = sql`${value('limit')}::int`
    const user = sql`${value('user')}::uuid`
    return sql`
      select ${feedColumns('e', 'page')}, h.horizon::text as horizon, h.purged_txid::text as purged_txid, h.purged_id::text as purged_id
      from (select pg_snapshot_xmin(pg_current_snapshot()) as horizon, p.txid as purged_txid, p.id as purged_id
            from (select 1) one left join event_purges p on true) h
      left join lateral (
        select mine.project_id, mine.txid, mine.id from (
          select pm.project_id, own.txid, own.id from project_members pm cross join lateral (
            select ev.txid, ev.id from events ev
            where ev.project_id = pm.project_id and (ev.txid, ev.id) > ${after} and ev.txid < h.horizon
            order by ev.txid, ev.id limit ${limit}) own
          where pm.user_id = ${user}
          union all
          (select ev.project_id, ev.txid, ev.id from events ev
           where ev.audience @> array[${user}] and ev.audience is not null and (ev.txid, ev.id) > ${after} and ev.txid < h.horizon
             and not exists (select 1 from project_members m where m.project_id = ev.project_id and m.user_id = ${user})
           order by ev.txid, ev.id limit ${limit})
        ) mine order by mine.txid, mine.id limit ${limit}
      ) page on true
      left join events e on e.project_id = page.project_id and e.txid = page.txid and e.id = page.id
      order by page.txid, page.id`
  }))

  // The next events of the whole feed, for the live streams' reader, each with those of `users` who
  // may see it now: the project's members and the former members it is about, as in `page`, but
  // not an account disabled since its stream opened.
  const followStatement = compile<FeedRow & { recipients: string[] | null, held: boolean }>((executor) => sqlStatement(executor, (value) => {
    const users = sql`${value('users')}::uuid[]`
    return sql`
      select ${feedColumns('ev')}, h.horizon::text as horizon, null as purged_txid, null as purged_id, h.held,
        array(select r.user_id from (
                select m.user_id from project_members m where m.project_id = ev.project_id and m.user_id = any(${users})
                union select a from unnest(ev.audience) a where a = any(${users})) r
              where not exists (select 1 from users u where u.id = r.user_id and u.disabled)) as recipients
      from (select x.horizon, exists (select 1 from events w where w.txid >= x.horizon) as held
            from (select pg_snapshot_xmin(pg_current_snapshot()) as horizon) x) h
      left join lateral (
        select * from events e
        where (e.txid, e.id) > (${value('after_txid')}::xid8, ${value('after_id')}::bigint) and e.txid < h.horizon
        order by e.txid, e.id limit ${value('limit')}::int
      ) ev on true
      order by ev.txid, ev.id`
  }))

  // The caller's most recent events before a place, newest first, with the actor's username and the
  // project's name, for people (the Activity page): the same per-project scans as `page`, backwards.
  const recentStatement = compile<FeedRow & { actor_name: string | null, project_name: string | null }>((executor) => sqlStatement(executor, (value) => {
    const before = sql`(${value('before_txid')}::xid8, ${value('before_id')}::bigint)`
    const limit = sql`${value('limit')}::int`
    const user = sql`${value('user')}::uuid`
    return sql`
      select ${feedColumns('e')}, '0' as horizon, null as purged_txid, null as purged_id, u.username as actor_name, p.name as project_name
      from (
        select mine.project_id, mine.txid, mine.id from (
          select pm.project_id, own.txid, own.id from project_members pm cross join lateral (
            select ev.txid, ev.id from events ev
            where ev.project_id = pm.project_id and (ev.txid, ev.id) < ${before}
            order by ev.txid desc, ev.id desc limit ${limit}) own
          where pm.user_id = ${user}
          union all
          (select ev.project_id, ev.txid, ev.id from events ev
           where ev.audience @> array[${user}] and ev.audience is not null and (ev.txid, ev.id) < ${before}
             and not exists (select 1 from project_members m where m.project_id = ev.project_id and m.user_id = ${user})
           order by ev.txid desc, ev.id desc limit ${limit})
        ) mine order by mine.txid desc, mine.id desc limit ${limit}
      ) page
      join events e on e.project_id = page.project_id and e.txid = page.txid and e.id = page.id
      left join users u on u.id = e.actor_id
      left join projects p on p.id = e.project_id
      order by page.txid desc, page.id desc`
  }))

  const startStatement = compile<{ horizon: string }>((executor) => sqlStatement(executor, () => sql`
    select pg_snapshot_xmin(pg_current_snapshot())::text as horizon`))

  const purgeStatement = compile<{ deleted: number }>((executor) => sqlStatement(executor, (value) => sql`
    with gone as (
      delete from events where occurred_at < now() - ${value('days')}::int * interval '1 day' returning txid, id
    ), last as (
      select txid, id from gone order by txid desc, id desc limit 1
    ), mark as (
      insert into event_purges (singleton, txid, id) select true, txid, id from last
      on conflict (singleton) do update set txid = excluded.txid, id = excluded.id, purged_at = now()
      where (event_purges.txid, event_purges.id) < (excluded.txid, excluded.id)
    )
    select count(*)::int as deleted from gone`))

  return {
    /**
     * Up to `limit` events of the caller's projects after `after` (from the oldest kept when
     * undefined), oldest first, and where to resume. `expired` when events after `after` have been
     * purged: the caller must resynchronise by listing.
     */
    async page (userId: string, after: FeedPosition | undefined, limit: number): Promise<{ items: Event[], next: FeedPosition } | { expired: true }> {
      const from = after ?? [0n, 0n]
      const rows = await pageStatement({ user: userId, after_txid: from[0].toString(), after_id: from[1].toString(), limit })
      const first = rows[0]!
      if (after !== undefined && first.purged_txid !== null && before(after, [BigInt(first.purged_txid), BigInt(first.purged_id!)])) return { expired: true }
      const { events: items, next } = eventsOf(rows, from, limit)
      return { items: items.map(({ event }) => event), next }
    },

    /**
     * Up to `limit` of the caller's events before `before` (the newest when undefined), newest first,
     * each with its actor's username and its project's name (null once deleted), for people.
     */
    async recent (userId: string, before: FeedPosition | undefined, limit: number): Promise<Array<Event & { actor_name: string | null, project_name: string | null }>> {
      const from = before ?? [2n ** 64n - 1n, 2n ** 63n - 1n]
      const rows = await recentStatement({ user: userId, before_txid: from[0].toString(), before_id: from[1].toString(), limit })
      if (rows.length === 0) return []
      return eventsOf(rows, from, limit).events.map(({ event, row }) => ({ ...event, actor_name: row.actor_name, project_name: row.project_name }))
    },

    /** Where the feed ends now: a reader starting here sees every event committed from now on. */
    async end (): Promise<FeedPosition> {
      const [row] = await startStatement({})
      return [BigInt(row!.horizon), 0n]
    },

    /**
     * Up to `limit` events of every project after `after`, oldest first, each with those of `users`
     * who may see it, and where to resume; `heldBack` when committed or coming events wait for an
     * older transaction (anywhere on the server) to finish.
     */
    async follow (after: FeedPosition, users: string[], limit: number): Promise<{ events: FeedEvent[], next: FeedPosition, heldBack: boolean }> {
      const rows = await followStatement({ after_txid: after[0].toString(), after_id: after[1].toString(), users, limit })
      const { events, next } = eventsOf(rows, after, limit)
      return { events: events.map(({ event, position, row }) => ({ event, position, recipients: row.recipients ?? [] })), next, heldBack: rows[0]!.held }
    },

    /** Deletes the events older than `days` days, marking how far the feed is purged; how many it deleted. */
    async purgeOlderThan (days: number): Promise<number> {
      const [row] = await purgeStatement({ days })
      return row?.deleted ?? 0
    },
  }
}

export type EventsRepository = ReturnType<typeof createEventsRepository>
