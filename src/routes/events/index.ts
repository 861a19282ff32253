import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import fp from 'fastify-plugin'
import { problem } from '../../errors.js'
import { parseFeedPosition } from '../../repositories/events.js'
import { jsonResponse, problemResponses } from '../../schemas/common.js'
import { EventListQuery, EventPage } from '../../schemas/events.js'

const read = { auth: { scopes: ['tasks:read' as const] } }
const defaultLimit = EventListQuery.properties.limit.default as number

const eventsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const events = app.eventsRepository

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
        'When you are added to a project, the `member.added` event about you is your cue to list its tasks: its earlier events are not replayed.',
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
    const after = request.query.after === undefined ? undefined : parseFeedPosition(request.query.after)
    const page = await events.page(request.auth!.userId, after, request.query.limit ?? defaultLimit)
    if ('expired' in page) throw problem('SYNC_EXPIRED', 'Events after this position have been purged: list your tasks and projects again, then poll without `after`.')
    return { items: page.items, next_after: page.next }
  })
}

// Encapsulated (its routes are its own); named so that its dependencies are checked when it is registered.
export default fp(eventsRoutes, { name: 'events-routes', encapsulate: true, dependencies: ['repositories', 'authorize'] })
