import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../../config.js'
import { checkOutboundUrl, RefusedDestination } from '../../lib/outbound-guard.js'
import { EventType } from '../../schemas/events.js'
import { WebhookCreate } from '../../schemas/webhooks.js'
import { field, fields, type FieldErrors, formChecker, idFromPath } from '../forms.js'
import { allProjects } from './projects.js'

const checkWebhook = formChecker(WebhookCreate, {
  url: 'Enter the full address events are to be sent to, starting with https://.',
  events: 'Choose the changes to send, or all of them.',
  project_id: 'Choose one of your projects, or all of them.',
  description: 'Keep the description under 500 characters.',
})

const eventChoices = [{ value: '*', label: 'Everything' }, ...(EventType.enum as string[]).map((type) => ({ value: type, label: type }))]
const notFound = 'There is no such webhook.'

/**
 * Webhooks as pages: create one (its secret shown once), see its deliveries, retry one, send a ping,
 * rotate the secret, turn it off and on, delete it. The API's operations, on the same repository.
 */
export default async function webhookPages (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const webhooks = app.webhooksRepository
  const allowPrivate = opts.config.WEBHOOK_ALLOW_PRIVATE_NETWORKS

  async function listPage (request: FastifyRequest, reply: FastifyReply, data: Record<string, unknown>) {
    const userId = request.webUser!.id
    const projects = await allProjects(app, userId)
    return await reply.page('webhooks/list', {
      webhooks: await webhooks.list(userId),
      projectNames: Object.fromEntries(projects.map((project) => [project.id, project.name])),
      projectOptions: [{ value: '', label: 'All my projects' }, ...projects.map((project) => ({ value: project.id, label: project.name }))],
      eventChoices,
      form: { events: ['*'] },
      errors: {},
      ...data,
    })
  }

  async function showPage (request: FastifyRequest, reply: FastifyReply, data: Record<string, unknown> = {}) {
    const userId = request.webUser!.id
    const id = idFromPath((request.params as { id: string }).id, 'WEBHOOK_NOT_FOUND', notFound)
    const webhook = await webhooks.get(userId, id)
    const { items } = await webhooks.deliveries(userId, id, { filters: {}, sort: 'created_at', limit: 50, after: undefined })
    return await reply.page('webhooks/show', { webhook, deliveries: items, ...data })
  }

  app.get('', async (request, reply) => await listPage(request, reply, {}))

  app.post('', async (request, reply) => {
    const form = {
      url: field(request.body, 'url').trim(),
      events: fields(request.body, 'events'),
      project_id: field(request.body, 'project_id'),
      description: field(request.body, 'description').trim(),
    }
    const values = { url: form.url, events: form.events.includes('*') ? ['*'] : form.events, project_id: form.project_id === '' ? null : form.project_id, description: form.description === '' ? null : form.description }
    const errors: FieldErrors = checkWebhook(values)
    if (errors.url === undefined) {
      try {
        await checkOutboundUrl(values.url, allowPrivate)
      } catch (err) {
        if (!(err instanceof RefusedDestination)) throw err
        errors.url = `This address cannot be used: ${err.message}.`
      }
    }
    if (Object.keys(errors).length > 0) return await listPage(request, reply.code(400), { form, errors })
    const { webhook, secret } = await webhooks.create(request.webUser!.id, values as WebhookCreate)
    // Shown in this response only (no redirect, so it never sits in the session).
    return await listPage(request, reply.code(201), { created: { ...webhook, secret } })
  })

  app.get('/:id', async (request, reply) => await showPage(request, reply))

  app.post('/:id/enabled', async (request, reply) => {
    const id = idFromPath((request.params as { id: string }).id, 'WEBHOOK_NOT_FOUND', notFound)
    const enabled = field(request.body, 'enabled') === 'true'
    await webhooks.update(request.webUser!.id, id, { enabled })
    request.session.flash = enabled ? 'The webhook is on: it is sent the changes from now on.' : 'The webhook is off: nothing is sent to it.'
    return reply.redirect(`/app/webhooks/${id}`, 303)
  })

  app.post('/:id/ping', async (request, reply) => {
    const id = idFromPath((request.params as { id: string }).id, 'WEBHOOK_NOT_FOUND', notFound)
    await webhooks.ping(request.webUser!.id, id)
    app.wakeWebhooks()
    request.session.flash = 'A test event is on its way: reload to see how it went.'
    return reply.redirect(`/app/webhooks/${id}`, 303)
  })

  app.post('/:id/rotate-secret', async (request, reply) => {
    const id = idFromPath((request.params as { id: string }).id, 'WEBHOOK_NOT_FOUND', notFound)
    const secret = await webhooks.rotateSecret(request.webUser!.id, id)
    return await showPage(request, reply, { rotated: secret })
  })

  app.post('/:id/deliveries/:delivery_id/retry', async (request, reply) => {
    const id = idFromPath((request.params as { id: string }).id, 'WEBHOOK_NOT_FOUND', notFound)
    const deliveryId = idFromPath((request.params as { delivery_id: string }).delivery_id, 'DELIVERY_NOT_FOUND', 'There is no such delivery.')
    await webhooks.retry(request.webUser!.id, id, deliveryId)
    app.wakeWebhooks()
    request.session.flash = 'The event is being sent again: reload to see how it went.'
    return reply.redirect(`/app/webhooks/${id}`, 303)
  })

  app.post('/:id/delete', async (request, reply) => {
    const id = idFromPath((request.params as { id: string }).id, 'WEBHOOK_NOT_FOUND', notFound)
    await webhooks.remove(request.webUser!.id, id)
    request.session.flash = 'The webhook is deleted.'
    return reply.redirect('/app/webhooks', 303)
  })
}
