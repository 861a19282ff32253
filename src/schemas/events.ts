import { type Static, Type } from '@sinclair/typebox'
import { eventType } from '../db/schema.js'
import { Nullable, Uuid } from './common.js'
import { StringEnum } from './tasks.js'

export const EventType = StringEnum(eventType.enumValues, {
  title: 'EventType',
  description: 'What changed: a task, a project or a membership was created (added), updated or deleted (removed).',
})
export type EventType = Static<typeof EventType>

export const FeedPosition = Type.String({
  pattern: '^[0-9]{1,20}-[0-9]{1,19}$',
  maxLength: 41,
  description: 'A place in the feed: opaque, compared only by the server. Events are ordered by it, not by `occurred_at`.',
  example: '7345-1042',
})

export const Event = Type.Object({
  id: Type.String({ ...FeedPosition, description: 'The event\'s id and its place in the feed (opaque): resume after it with `after=`. Webhook deliveries carry it as `webhook-id`.' }),
  type: EventType,
  occurred_at: Type.String({ format: 'date-time', description: 'When the change was made: the start of its transaction, RFC 3339 in UTC with microseconds.', example: '2026-11-23T09:30:00.123456Z' }),
  actor_id: Nullable(Uuid, { description: 'Who made the change; null when no one did (an account\'s deletion removes its memberships and its projects).' }),
  project_id: Type.String({ ...Uuid, description: 'The project the change happened in (for a project event, the project itself).' }),
  data: Type.Object({}, {
    additionalProperties: true,
    description: [
      'The resource after the change, as the API returns it: a `Task` for `task.created` and `task.updated`, a `Project` for',
      '`project.created` and `project.updated` (its `role` is the actor\'s), a `Member` for `member.*` (for `member.removed`,',
      'the member as they were). For `task.deleted` and `project.deleted`, only `{id}`: the tasks of a deleted project are gone with it,',
      'without an event each.',
    ].join(' '),
    example: { id: '3fa85f64-5717-4562-b3fc-2c963f66afa6', title: 'Buy milk', completed: true },
  }),
}, {
  $id: 'Event',
  title: 'Event',
  description: 'A change to a task, a project or a membership, recorded in the same transaction as the change.',
})
/** `data` is any of the resources, so its fields are read as unknown. */
export type Event = Omit<Static<typeof Event>, 'data'> & { data: Record<string, unknown> }

export const EventPage = Type.Object({
  items: Type.Array(Type.Ref(Event), { description: 'Oldest first; fewer than `limit` when you have caught up.' }),
  next_after: Type.String({ ...FeedPosition, description: 'Always set: poll again with `after=` this value. It may be past the last item when you have caught up.' }),
}, {
  $id: 'EventPage',
  title: 'EventPage',
  description: 'A page of the change feed.',
})

export const EventListQuery = Type.Object({
  after: Type.Optional(Type.String({ ...FeedPosition, description: 'Resume after this place: the `next_after` of your previous poll (or an event\'s `id`). Omitted: from the oldest event kept. Past the retention (`EVENTS_RETENTION_DAYS`) it is a 410 `SYNC_EXPIRED`.' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100, description: 'Page size, 1 to 500.', example: 100 })),
}, { additionalProperties: false })
export type EventListQuery = Static<typeof EventListQuery>

export const EventStreamQuery = Type.Object({
  after: Type.Optional(Type.String({ ...FeedPosition, description: 'Start after this place (an event\'s `id`, or the `next_after` of a poll); `Last-Event-ID` takes precedence. Omitted with no `Last-Event-ID`: from now. Past the retention it is a 410 `SYNC_EXPIRED`.' })),
}, { additionalProperties: false })
export type EventStreamQuery = Static<typeof EventStreamQuery>

export const EventStreamHeaders = Type.Object({
  'last-event-id': Type.Optional(Type.String({ ...FeedPosition, description: 'The `id` of the last event received: an `EventSource` sends it by itself when it reconnects, and the stream resumes right after it.' })),
})

export const EventStreamBody = Type.String({
  description: [
    'Server-sent events (the `text/event-stream` format), one per change: `id:` the event\'s id, `event:` its type, `data:` the `Event` as JSON.',
    'The stream opens with `retry:` (how long to wait before reconnecting) and carries a comment line (`: heartbeat`) at least every 15 seconds.',
  ].join(' '),
  example: 'retry: 2000\n\nid: 7345-1042\nevent: task.created\ndata: {"id":"7345-1042","type":"task.created",...}\n\n',
})
