import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import fp from 'fastify-plugin'
import { problem } from '../../errors.js'
import { securityEvent } from '../../lib/security-events.js'
import { toApiKey } from '../../repositories/api-keys.js'
import { ApiKeyCreate, ApiKeyCreated, ApiKeyList } from '../../schemas/api-keys.js'
import { IdParams, jsonResponse, noContent, problemResponses } from '../../schemas/common.js'

const apiKeysRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // A key that could mint or revoke keys would outlive every revocation: keys never manage keys.
  const tokenOnly = { auth: { apiKeys: false } }

  app.post('', {
    config: tokenOnly,
    schema: {
      operationId: 'createApiKey',
      summary: 'Create an API key',
      description: 'Returns the key once, in `key`: store it now, it cannot be shown again. Send it as `X-API-Key`. ' +
        'Its scopes must be a subset of yours.',
      tags: ['api-keys'],
      body: Type.Ref(ApiKeyCreate),
      response: { 201: jsonResponse('The key was created; `key` is its secret, shown this once.', Type.Ref(ApiKeyCreated)), ...problemResponses(400, 413, 415, 500, 503) },
    },
  }, async (request, reply) => {
    const auth = request.auth!
    const body = request.body as ApiKeyCreate
    const beyond = body.scopes.filter((s) => !auth.scopes.has(s))
    if (beyond.length > 0) throw problem('INSUFFICIENT_SCOPE', `You cannot grant scopes you do not hold: ${beyond.join(' ')}.`)
    const expiresAt = body.expires_at === undefined || body.expires_at === null ? null : new Date(body.expires_at)
    if (expiresAt !== null && expiresAt.getTime() <= Date.now()) {
      throw problem('VALIDATION_FAILED', 'expires_at must be in the future.', { errors: [{ in: 'body', path: '/expires_at', message: 'must be in the future' }] })
    }
    const { row, key } = await app.apiKeysRepository.create({ userId: auth.userId, name: body.name, scopes: body.scopes, expiresAt, clientCertSha256: body.client_cert_sha256 ?? null })
    securityEvent(request.log, 'auth.api_key_created', { userId: auth.userId, keyId: row.id })
    return reply.code(201).send({ ...toApiKey(row), key })
  })

  app.get('', {
    config: tokenOnly,
    schema: {
      operationId: 'listApiKeys',
      summary: 'List your API keys',
      description: 'Your keys that are not revoked, newest first, with their prefix but never the secret.',
      tags: ['api-keys'],
      response: { 200: jsonResponse('Your active keys.', Type.Ref(ApiKeyList)), ...problemResponses(500, 503) },
    },
  }, async (request) => {
    const rows = await app.apiKeysRepository.listActive(request.auth!.userId)
    return { items: rows.map(toApiKey) }
  })

  app.delete('/:id', {
    config: tokenOnly,
    schema: {
      operationId: 'revokeApiKey',
      summary: 'Revoke an API key',
      description: 'The key stops working at once on this server and within 30 s everywhere.',
      tags: ['api-keys'],
      params: IdParams,
      response: { 204: noContent('The key is revoked.'), ...problemResponses(400, 404, 414, 500, 503) },
    },
  }, async (request, reply) => {
    const { id } = request.params as IdParams
    const userId = request.auth!.userId
    if (!await app.apiKeysRepository.revoke(userId, id)) throw problem('API_KEY_NOT_FOUND', 'You have no active API key with this id.')
    app.forgetApiKey(id)
    securityEvent(request.log, 'auth.api_key_revoked', { userId, keyId: id })
    return reply.code(204).send(null)
  })
}

// Encapsulated (its routes are its own); named so that its dependencies are checked when it is registered.
export default fp(apiKeysRoutes, { name: 'api-keys-routes', encapsulate: true, dependencies: ['repositories', 'authorize', 'auth-cache'] })
