import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import { createUsersRepository } from '../../repositories/users.js'
import { createRefreshTokensRepository } from '../../repositories/refresh-tokens.js'
import { createApiKeysRepository } from '../../repositories/api-keys.js'
import { createTasksRepository } from '../../repositories/tasks.js'
import { createIdempotencyKeysRepository } from '../../repositories/idempotency-keys.js'
import { createProjectsRepository } from '../../repositories/projects.js'
import { createEventsRepository } from '../../repositories/events.js'
import { createWebhooksRepository } from '../../repositories/webhooks.js'
import { createAccountSecurityRepository } from '../../repositories/account-security.js'
import { createIdentitiesRepository } from '../../repositories/identities.js'

declare module 'fastify' {
  interface FastifyInstance {
    usersRepository: ReturnType<typeof createUsersRepository>
    refreshTokensRepository: ReturnType<typeof createRefreshTokensRepository>
    apiKeysRepository: ReturnType<typeof createApiKeysRepository>
    tasksRepository: ReturnType<typeof createTasksRepository>
    idempotencyKeysRepository: ReturnType<typeof createIdempotencyKeysRepository>
    projectsRepository: ReturnType<typeof createProjectsRepository>
    eventsRepository: ReturnType<typeof createEventsRepository>
    webhooksRepository: ReturnType<typeof createWebhooksRepository>
    accountSecurityRepository: ReturnType<typeof createAccountSecurityRepository>
    identitiesRepository: ReturnType<typeof createIdentitiesRepository>
  }
}

/** One instance of each repository, built once over the app's database. */
async function repositoriesPlugin (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  app.decorate('usersRepository', createUsersRepository(app.db))
  app.decorate('refreshTokensRepository', createRefreshTokensRepository(app.db, opts.config.REFRESH_TOKEN_TTL))
  app.decorate('apiKeysRepository', createApiKeysRepository(app.db))
  app.decorate('tasksRepository', createTasksRepository(app.database))
  app.decorate('idempotencyKeysRepository', createIdempotencyKeysRepository(app.db))
  app.decorate('projectsRepository', createProjectsRepository(app.db))
  app.decorate('eventsRepository', createEventsRepository(app.database))
  app.decorate('webhooksRepository', createWebhooksRepository(app.database, app.keys.keysFor('webhookSecret')))
  app.decorate('accountSecurityRepository', createAccountSecurityRepository(app.db, {
    totpSecret: app.keys.keysFor('totpSecret'),
    recoveryCode: app.keys.keysFor('recoveryCode'),
  }))
  app.decorate('identitiesRepository', createIdentitiesRepository(app.db))
}

export default fp(repositoriesPlugin, { name: 'repositories', dependencies: ['database'] })
