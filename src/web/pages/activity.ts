import type { FastifyInstance } from 'fastify'
import { isStorablePosition, parseFeedPosition } from '../../repositories/events.js'
import type { Event } from '../../schemas/events.js'
import { field } from '../forms.js'

const PAGE = 30
const PLACE = /^[0-9]{1,20}-[0-9]{1,19}$/

const verbs: Record<Event['type'], string> = {
  'task.created': 'created the task',
  'task.updated': 'changed the task',
  'task.deleted': 'deleted a task',
  'project.created': 'created the project',
  'project.updated': 'changed the project',
  'project.deleted': 'deleted the project',
  'member.added': 'added',
  'member.updated': 'changed the role of',
  'member.removed': 'removed',
}

/** What an event was about, in words: a task's title, a project's name, a member's username. */
function subjectOf (event: Event): string {
  const data = event.data
  if (event.type.startsWith('task.')) return typeof data.title === 'string' ? data.title : ''
  if (event.type.startsWith('member.')) return typeof data.username === 'string' ? data.username : ''
  return typeof data.name === 'string' ? data.name : ''
}

/** Your projects' recent changes, newest first, a page at a time (GET /v1/events, for people). */
export default async function activityPages (app: FastifyInstance): Promise<void> {
  app.get('', async (request, reply) => {
    const before = field(request.query, 'before')
    const parsed = PLACE.test(before) ? parseFeedPosition(before) : undefined
    const from = parsed !== undefined && isStorablePosition(parsed) ? parsed : undefined
    const events = await app.eventsRepository.recent(request.webUser!.id, from, PAGE)
    const items = events.map((event) => ({
      ...event,
      verb: verbs[event.type],
      subject: subjectOf(event),
      taskLink: event.type === 'task.created' || event.type === 'task.updated' ? `/app/tasks/${event.data.id as string}` : undefined,
    }))
    return await reply.page('activity', { items, older: events.length === PAGE ? events.at(-1)!.id : undefined, paged: from !== undefined })
  })
}
