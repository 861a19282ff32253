import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { problem } from '../../errors.js'
import { securityEvent } from '../../lib/security-events.js'
import { toApiKey } from '../../repositories/api-keys.js'
import { ApiKeyCreate, type ApiKeyScope } from '../../schemas/api-keys.js'
import { scopes, scopesOf } from '../../schemas/scopes.js'
import { field, fields, type FieldErrors, formChecker, idFromPath, instantFromInput } from '../forms.js'

const checkApiKey = formChecker(ApiKeyCreate, {
  name: 'Enter a name of 1 to 100 characters, to tell this key from others.',
  scopes: 'Choose what the key may do: read tasks, write tasks, or both.',
  expires_at: 'Enter a date and time (UTC), or leave it empty for a key that does not expire.',
})

const scopeChoices = scopes.filter((scope) => scope.apiKeys).map((scope) => ({ value: scope.name, label: scope.label }))

/** Create API keys (the key shown once) and revoke them: POST/GET/DELETE /v1/api-keys as a page. */
export default async function apiKeyPages (app: FastifyInstance): Promise<void> {
  const keys = app.apiKeysRepository

  async function keysPage (request: FastifyRequest, reply: FastifyReply, data: Record<string, unknown>) {
    const rows = await keys.listActive(request.webUser!.id)
    return await reply.page('api-keys', { keys: rows.map(toApiKey), scopeChoices, form: { scopes: scopeChoices.map((choice) => choice.value) }, errors: {}, ...data })
  }

  app.get('', async (request, reply) => await keysPage(request, reply, {}))

  app.post('', async (request, reply) => {
    const user = request.webUser!
    const form = { name: field(request.body, 'name').trim(), scopes: fields(request.body, 'scopes'), expires_at: field(request.body, 'expires_at') }
    const expiresAt = instantFromInput(form.expires_at)
    const errors: FieldErrors = checkApiKey({ name: form.name, scopes: form.scopes, expires_at: expiresAt })
    if (errors.expires_at === undefined && expiresAt !== null && new Date(expiresAt).getTime() <= Date.now()) {
      errors.expires_at = 'Choose a time in the future, or leave it empty.'
    }
    const held = new Set<string>(scopesOf(user.role))
    if (errors.scopes === undefined && form.scopes.some((scope) => !held.has(scope))) errors.scopes = 'You cannot grant what you may not do yourself.'
    if (Object.keys(errors).length > 0) return await keysPage(request, reply.code(400), { form, errors })
    const { row, key } = await keys.create({ userId: user.id, name: form.name, scopes: form.scopes as ApiKeyScope[], expiresAt: expiresAt === null ? null : new Date(expiresAt) })
    securityEvent(request.log, 'auth.api_key_created', { userId: user.id, keyId: row.id })
    // Shown in this response only (no redirect, so it never sits in the session): it is stored as a hash.
    return await keysPage(request, reply.code(201), { created: { ...toApiKey(row), key } })
  })

  app.post('/:id/revoke', async (request, reply) => {
    const userId = request.webUser!.id
    const { id } = request.params as { id: string }
    if (!await keys.revoke(userId, idFromPath(id, 'API_KEY_NOT_FOUND', 'There is no such API key.'))) throw problem('API_KEY_NOT_FOUND', 'There is no such API key.')
    app.forgetApiKey(id.toLowerCase())
    securityEvent(request.log, 'auth.api_key_revoked', { userId, keyId: id })
    request.session.flash = 'The API key is revoked: it no longer works.'
    return reply.redirect('/app/api-keys', 303)
  })
}
