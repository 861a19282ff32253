import Negotiator from 'negotiator'
import sse, { type SSEPluginOptions } from '@fastify/sse'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsync } from 'fastify'
import { Type } from '@sinclair/typebox'
import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import { problem } from '../../errors.js'
import { type FeedPosition, formatFeedPosition, isStorablePosition, parseFeedPosition } from '../../repositories/events.js'
import { jsonResponse, problemResponses, streamResponse } from '../../schemas/common.js'
import { EventListQuery, EventPage, EventStreamBody, EventStreamHeaders, EventStreamQuery } from '../../schemas/events.js'

const read = { auth: { scopes: ['tasks:read' as const] } }
const defaultLimit = EventListQuery.properties.limit.default as number

/** A place in the feed from `after` or `Last-Event-ID`; one the database cannot hold is a 400, not a 500. */
function placeIn (text: string, part: 'query' | 'header', path: string): FeedPosition {
  const place = parseFeedPosition(text)
  if (!isStorablePosition(place)) {
    throw problem('VALIDATION_FAILED', `${part}${path} is not a place in the feed.`, { errors: [{ in: part, path, message: 'is not a place in the feed' }] })
  }
  return place
}

const eventsRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, opts) => {
  const events = app.eventsRepository
  // Accept is negotiated here ('manual'), so that a refusal is a problem like every other.
  // The package's module is the plugin wrapped by fastify-plugin (its `default` is the bare one),
  // which its types do not say.
  await app.register(sse as unknown as FastifyPluginAsync<SSEPluginOptions>, { heartbeatInterval: opts.config.EVENTS_STREAM_HEARTBEAT_MS })

  app.get('', {
    config: read,
    schema: {
      operationId: 'listEvents',
      summary: 'Poll the change feed',
      description: [
        'The changes to tasks, projects and memberships in the projects you are a member of, oldest first, after `after`.',
        '',
        'Poll again with `after=` the `next_after` of each page: a client that always does never misses an event and never sees one twice,',
        'however many writers commit at once and in whatever order their transactions finish (an event appears once every transaction',
        'older than its own has finished, so a long transaction elsewhere can hold the feed back for its duration).',
        '',
        'You see the events of the projects you are a member of now, and the `project.deleted` and `member.removed` events that concern you.',
        'When you are added to a project, the `member.added` event about you is your cue to list its tasks: its events from before your place in the feed are not replayed.',
        'Events are kept `EVENTS_RETENTION_DAYS` days (30 unless the operator says otherwise): an `after` from before that is a 410 `SYNC_EXPIRED`.',
      ].join('\n'),
      tags: ['events'],
      querystring: EventListQuery,
      response: {
        200: jsonResponse('A page of events, and where to resume.', Type.Ref(EventPage)),
        ...problemResponses(400, 410, 429, 500, 503),
      },
    },
  }, async (request) => {
    const after = request.query.after === undefined ? undefined : placeIn(request.query.after, 'query', '/after')
    const page = await events.page(request.auth!.userId, after, request.query.limit ?? defaultLimit)
    if ('expired' in page) throw problem('SYNC_EXPIRED', 'Events after this position have been purged: list your tasks and projects again, then poll without `after`.')
    return { items: page.items, next_after: formatFeedPosition(page.next) }
  })

  app.get('/stream', {
    config: read,
    sse: 'manual',
    schema: {
      operationId: 'streamEvents',
      summary: 'Follow the change feed live',
      description: [
        'The events of `GET /v1/events` as they happen, as server-sent events (`Accept: text/event-stream`; an `EventSource` in a browser).',
        '',
        'It starts after `Last-Event-ID`, else after `after`, else now; from a place in the past it first sends every event since, then follows.',
        'The guarantee is the poll\'s: resuming after the last `id` received never misses an event and never repeats one.',
        'An event written through any instance of the service reaches every stream within a second.',
        '',
        'A comment line (`: heartbeat`) comes every `EVENTS_STREAM_HEARTBEAT_MS` (15 s unless the operator says otherwise) so that proxies keep the connection open.',
        'The server may end a stream: when it shuts down, or when the client leaves too much unread. Reconnect after the `retry:` time with',
        '`Last-Event-ID` (an `EventSource` does both by itself). A stream is authorised once, when it opens.',
      ].join('\n'),
      tags: ['events'],
      querystring: EventStreamQuery,
      headers: EventStreamHeaders,
      response: {
        200: streamResponse('The events, as they happen, until the server or the client ends the stream.', 'text/event-stream', EventStreamBody),
        ...problemResponses(400, 406, 410, 429, 500, 503),
      },
    },
  }, async (request, reply) => {
    // Media ranges as RFC 9110 reads them: `*/*` (curl's default) and `text/*` allow the stream.
    if (request.headers.accept?.trim() !== '' && new Negotiator(request.raw).mediaType(['text/event-stream']) === undefined) {
      throw problem('NOT_ACCEPTABLE', 'This operation answers with `text/event-stream` only: send `Accept: text/event-stream`.')
    }
    const lastEventId = request.headers['last-event-id']
    const from = lastEventId !== undefined
      ? placeIn(lastEventId, 'header', '/last-event-id')
      : request.query.after === undefined ? undefined : placeIn(request.query.after, 'query', '/after')
    await app.eventStreams.serve(reply, request.auth!.userId, from)
  })
}

// Encapsulated (its routes are its own); named so that its dependencies are checked when it is registered.
export default fp(eventsRoutes, { name: 'events-routes', encapsulate: true, dependencies: ['repositories', 'authorize', 'event-streams'] })
