import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { problem } from '../../errors.js'
import { hashPassword, verifyAgainstDummy, verifyPassword } from '../../lib/passwords.js'
import { toUser } from '../../repositories/users.js'
import { LoginRequest, SignupRequest, TokenPair } from '../../schemas/auth.js'
import { problemResponses } from '../../schemas/common.js'
import { User } from '../../schemas/users.js'

const authRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/signup', {
    schema: {
      operationId: 'signUp',
      summary: 'Create an account',
      description: 'Creates a user with role `user`. The password must be 8 to 128 characters and differ from the username.',
      tags: ['auth'],
      body: Type.Ref(SignupRequest),
      response: { 201: Type.Ref(User), ...problemResponses(400, 409, 413, 415, 429, 500, 503) },
    },
  }, async (request, reply) => {
    const { username, password, email } = request.body as SignupRequest
    if (password.toLowerCase() === username.toLowerCase()) {
      throw problem('VALIDATION_FAILED', 'The password must not equal the username.', {
        errors: [{ in: 'body', path: '/password', message: 'must not equal the username' }],
      })
    }
    const user = await app.usersRepository.create({ username, email, passwordHash: await hashPassword(password) })
    request.log.info({ event: 'auth.signup', userId: user.id }, 'account created')
    return reply.code(201).header('location', `/v1/users/${user.id}`).send(toUser(user))
  })

  app.post('/login', {
    schema: {
      operationId: 'logIn',
      summary: 'Log in with username and password',
      description: 'Returns an access token and a refresh token. An unknown user and a wrong password get the same 401.',
      tags: ['auth'],
      body: Type.Ref(LoginRequest),
      response: { 200: Type.Ref(TokenPair), ...problemResponses(400, 401, 413, 415, 429, 500, 503) },
    },
  }, async (request) => {
    const { username, password } = request.body as LoginRequest
    const user = await app.usersRepository.findByUsername(username)
    if (user === undefined) {
      // Same work and same answer as a wrong password, so responses do not reveal who exists.
      await verifyAgainstDummy(password)
    } else {
      const check = await verifyPassword(user.passwordHash, password)
      if (check.ok && !user.disabled) {
        if (check.needsRehash) await app.usersRepository.replacePasswordHash(user.id, await hashPassword(password))
        request.log.info({ event: 'auth.login_succeeded', userId: user.id }, 'login succeeded')
        return await app.issueTokenPair(user)
      }
    }
    request.log.info({ event: 'auth.login_failed', username }, 'login failed')
    throw problem('INVALID_CREDENTIALS', 'The username or password is wrong.', { headers: { 'www-authenticate': 'Bearer realm="tasks-api"' } })
  })
}

export default authRoutes
