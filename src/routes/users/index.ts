import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { problem } from '../../errors.js'
import { toUser } from '../../repositories/users.js'
import { problemResponses } from '../../schemas/common.js'
import { User } from '../../schemas/users.js'

const usersRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/me', {
    config: { auth: {} },
    schema: {
      operationId: 'getCurrentUser',
      summary: 'Your account',
      description: 'The account the credentials belong to.',
      tags: ['users'],
      response: { 200: Type.Ref(User), ...problemResponses(429, 500, 503) },
    },
  }, async (request) => {
    const user = await app.usersRepository.findById(request.auth!.userId)
    if (user === undefined) throw problem('INVALID_TOKEN', 'The account no longer exists.')
    return toUser(user)
  })
}

export default usersRoutes
