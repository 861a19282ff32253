import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import fp from 'fastify-plugin'
import { problem } from '../../errors.js'
import { JsonWebKeySet } from '../../schemas/auth.js'
import { jsonResponse, problemResponses } from '../../schemas/common.js'

/** How long verifiers may cache the key set: a key added second is published this long before it signs. */
const JWKS_MAX_AGE_SECONDS = 300

/** RFC 8615 well-known URIs: the keys other services verify access tokens with. */
const wellKnownRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/jwks.json', {
    schema: {
      operationId: 'getJwks',
      summary: 'The public keys that verify access tokens',
      description: 'With `JWT_SIGNING_KEYS` configured, access tokens are EdDSA or ES256, with the signing key\'s `kid` in their header, and this JWK set ' +
        'lets other services verify them (e.g. with `jose`\'s `createRemoteJWKSet`). ' +
        `Cacheable for ${JWKS_MAX_AGE_SECONDS} s. 404 when tokens are HS256 (the default), whose key is a shared secret and never published.`,
      tags: ['auth'],
      security: [],
      response: { 200: jsonResponse('The public keys, the signing key first.', Type.Ref(JsonWebKeySet), 'Cache-Control'), ...problemResponses(404) },
    },
  }, async (_request, reply) => {
    const keys = app.accessTokens.publicKeys
    if (keys === undefined) throw problem('NOT_FOUND', 'Access tokens here are HS256 (no JWT_SIGNING_KEYS): there is no public key to publish.')
    return reply.header('cache-control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`).send({ keys })
  })
}

export default fp(wellKnownRoutes, { name: 'well-known-routes', encapsulate: true, dependencies: ['jwt'] })
