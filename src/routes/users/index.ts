import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import fp from 'fastify-plugin'
import { problem } from '../../errors.js'
import { createPaging } from '../../lib/paging.js'
import { assertPasswordPolicy, hashPassword } from '../../lib/passwords.js'
import { securityEvent } from '../../lib/security-events.js'
import { toIdentity } from '../../repositories/identities.js'
import { toUser, userList } from '../../repositories/users.js'
import { IdentityList } from '../../schemas/identities.js'
import { IdParams, jsonResponse, noContent, problemResponses } from '../../schemas/common.js'
import { PasswordChange, User, UserAdminPatch, UserListQuery, UserPage, UserSelfPatch } from '../../schemas/users.js'

const usersRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const paging = createPaging(userList, { keys: app.keys.keysFor('usersCursor') })
  // Keys are for integrations: managing an account takes an access token.
  const self = { auth: { apiKeys: false } }
  const admin = { auth: { role: 'admin' as const, apiKeys: false } }

  app.get('/me', {
    config: { auth: {} },
    schema: {
      operationId: 'getCurrentUser',
      summary: 'Your account',
      description: 'The account the credentials belong to.',
      tags: ['users'],
      response: { 200: jsonResponse('Your account.', Type.Ref(User)), ...problemResponses(500, 503) },
    },
  }, async (request) => {
    const user = await app.usersRepository.findById(request.auth!.userId)
    if (user === undefined) throw problem('INVALID_TOKEN', 'The account no longer exists.')
    return toUser(user)
  })

  app.patch('/me', {
    config: self,
    schema: {
      operationId: 'updateCurrentUser',
      summary: 'Change your display name or email',
      description: 'Merge patch: absent fields stay as they are, `null` clears a field.',
      tags: ['users'],
      body: Type.Ref(UserSelfPatch),
      response: { 200: jsonResponse('Your account, as changed.', Type.Ref(User)), ...problemResponses(400, 413, 415, 500, 503) },
    },
  }, async (request) => {
    const user = await app.usersRepository.updateProfile(request.auth!.userId, request.body as UserSelfPatch)
    if (user === undefined) throw problem('INVALID_TOKEN', 'The account no longer exists.')
    return toUser(user)
  })

  app.post('/me/password', {
    config: self,
    schema: {
      operationId: 'changePassword',
      summary: 'Change your password',
      description: 'Needs the current password; wrong ones count as failed logins of your username. Revokes every refresh token of the account, and access tokens issued ' +
        'before the change stop working: log in again with the new password.',
      tags: ['users'],
      body: Type.Ref(PasswordChange),
      response: { 204: noContent('The password is changed.'), ...problemResponses(400, 413, 415, 500, 503) },
    },
  }, async (request, reply) => {
    const { current_password: current, new_password: next } = request.body as PasswordChange
    const user = await app.usersRepository.findById(request.auth!.userId)
    if (user === undefined) throw problem('INVALID_TOKEN', 'The account no longer exists.')
    await app.confirmCurrentPassword(request, user, current, 'password change')
    assertPasswordPolicy(next, user.username, '/new_password')
    await app.usersRepository.changePassword(user.id, await hashPassword(next))
    app.forgetAuthState(user.id)
    securityEvent(request.log, 'auth.password_changed', { userId: user.id })
    return reply.code(204).send(null)
  })

  app.delete('/me', {
    config: self,
    schema: {
      operationId: 'deleteCurrentUser',
      summary: 'Delete your account',
      description: 'Deletes the account and everything it owns (tasks, tokens, API keys) in one transaction. ' +
        'The last active admin cannot delete themselves (409).',
      tags: ['users'],
      response: { 204: noContent('The account is deleted.'), ...problemResponses(409, 500, 503) },
    },
  }, async (request, reply) => {
    const userId = request.auth!.userId
    await app.usersRepository.delete(userId)
    app.forgetAuthState(userId)
    securityEvent(request.log, 'users.deleted', { userId, actorId: userId })
    return reply.code(204).send(null)
  })

  app.get('/me/identities', {
    config: self,
    schema: {
      operationId: 'listIdentities',
      summary: 'Your linked identities',
      description: 'The accounts of the OpenID provider that sign in to yours (single sign-on). Link one from the account page of /app.',
      tags: ['users'],
      response: { 200: jsonResponse('Your linked identities.', Type.Ref(IdentityList)), ...problemResponses(500, 503) },
    },
  }, async (request) => {
    return { items: (await app.identitiesRepository.list(request.auth!.userId)).map(toIdentity) }
  })

  app.delete('/me/identities/:id', {
    config: self,
    schema: {
      operationId: 'unlinkIdentity',
      summary: 'Unlink an identity',
      description: 'The provider\'s account no longer signs in to yours. Refused (409 `LAST_WAY_IN`) when it is the account\'s only way in: ' +
        'no password and no other identity; set a password through `POST /v1/auth/password/forgot` first (which needs a verified email).',
      tags: ['users'],
      params: IdParams,
      response: { 204: noContent('The identity is unlinked.'), ...problemResponses(400, 404, 409, 414, 500, 503) },
    },
  }, async (request, reply) => {
    const userId = request.auth!.userId
    if (!await app.identitiesRepository.unlink(userId, (request.params as IdParams).id)) throw problem('IDENTITY_NOT_FOUND', 'You have no linked identity with this id.')
    securityEvent(request.log, 'identity.unlinked', { userId })
    return reply.code(204).send(null)
  })

  app.get('', {
    config: admin,
    schema: {
      operationId: 'listUsers',
      summary: 'List users (admin)',
      description: 'Newest first, paged with an opaque keyset cursor that stays stable while users sign up. ' +
        'A `Link: <…>; rel="next"` header accompanies `next_cursor`.',
      tags: ['users'],
      querystring: UserListQuery,
      response: { 200: jsonResponse('One page of users.', Type.Ref(UserPage), 'Link'), ...problemResponses(400, 500, 503) },
    },
  }, async (request, reply) => {
    const list = paging.open(request.auth!.userId, request.query as UserListQuery)
    return paging.respond(reply, list, request.url, await app.usersRepository.list(list))
  })

  app.get('/:id', {
    config: admin,
    schema: {
      operationId: 'getUser',
      summary: 'Get a user (admin)',
      tags: ['users'],
      params: IdParams,
      response: { 200: jsonResponse('The user.', Type.Ref(User)), ...problemResponses(400, 404, 414, 500, 503) },
    },
  }, async (request) => {
    const user = await app.usersRepository.findById((request.params as IdParams).id)
    if (user === undefined) throw problem('USER_NOT_FOUND', 'No user has this id.')
    return toUser(user)
  })

  app.patch('/:id', {
    config: admin,
    schema: {
      operationId: 'updateUser',
      summary: 'Change a user\'s role or status (admin)',
      description: 'Disabling revokes the user\'s refresh tokens at once; their access tokens and API keys stop working ' +
        'within 60 s. The last active admin cannot be demoted or disabled (409).',
      tags: ['users'],
      params: IdParams,
      body: Type.Ref(UserAdminPatch),
      response: { 200: jsonResponse('The user, as changed.', Type.Ref(User)), ...problemResponses(400, 404, 409, 413, 414, 415, 500, 503) },
    },
  }, async (request) => {
    const { id } = request.params as IdParams
    const patch = request.body as UserAdminPatch
    const user = await app.usersRepository.adminUpdate(id, patch)
    if (user === undefined) throw problem('USER_NOT_FOUND', 'No user has this id.')
    app.forgetAuthState(id)
    securityEvent(request.log, 'users.updated_by_admin', { userId: id, actorId: request.auth!.userId, changes: patch })
    return toUser(user)
  })

  app.delete('/:id', {
    config: admin,
    schema: {
      operationId: 'deleteUser',
      summary: 'Delete a user (admin)',
      description: 'Deletes the user and everything they own, in one transaction. The last active admin cannot be deleted (409).',
      tags: ['users'],
      params: IdParams,
      response: { 204: noContent('The user is deleted.'), ...problemResponses(400, 404, 409, 414, 500, 503) },
    },
  }, async (request, reply) => {
    const { id } = request.params as IdParams
    if (!await app.usersRepository.delete(id)) throw problem('USER_NOT_FOUND', 'No user has this id.')
    app.forgetAuthState(id)
    securityEvent(request.log, 'users.deleted', { userId: id, actorId: request.auth!.userId })
    return reply.code(204).send(null)
  })
}

// Encapsulated (its routes are its own); named so that its dependencies are checked when it is registered.
export default fp(usersRoutes, { name: 'users-routes', encapsulate: true, dependencies: ['repositories', 'authorize', 'auth-cache', 'credentials'] })
