import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import fp from 'fastify-plugin'
import { migrationsApplied } from '../../db/migrate.js'
import { Health } from '../../schemas/health.js'
import { jsonResponse, problemResponses } from '../../schemas/common.js'
import { sendProblem } from '../../plugins/app/problems.js'

const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // Once seen, applied migrations stay applied: later checks only ping the database.
  let migrated = false

  app.get('/live', {
    schema: {
      operationId: 'getLiveness',
      summary: 'Liveness',
      description: '200 while the process runs. Touches nothing else, so a slow database never restarts the process.',
      tags: ['health'],
      security: [],
      response: { 200: jsonResponse('The process is running.', Type.Ref(Health)), ...problemResponses(400) },
    },
  }, async () => ({ status: 'ok' as const }))

  app.get('/ready', {
    schema: {
      operationId: 'getReadiness',
      summary: 'Readiness',
      description: '200 when the database answers and every migration is applied; 503 otherwise, and while shutting down.',
      tags: ['health'],
      security: [],
      response: { 200: jsonResponse('Ready to serve requests.', Type.Ref(Health)), ...problemResponses(400, 503) },
    },
  }, async (request, reply) => {
    const database = await app.database.ping().then(() => 'ok' as const, () => 'unavailable' as const)
    if (database === 'ok' && !migrated) migrated = await migrationsApplied(app.db)
    const migrations = database === 'ok' ? (migrated ? 'ok' as const : 'pending' as const) : 'unknown' as const
    if (database === 'ok' && migrated && !app.shuttingDown) {
      return { status: 'ok' as const, checks: { database: 'ok' as const, migrations: 'ok' as const, shutting_down: false as const } }
    }
    const detail = `Not ready: database ${database}, migrations ${migrations}${app.shuttingDown ? ', shutting down' : ''}.`
    return sendProblem(request, reply, 'SERVICE_UNAVAILABLE', { detail, headers: { 'retry-after': '5' } })
  })
}

// Encapsulated (its routes are its own); named so that its dependencies are checked when it is registered.
export default fp(healthRoutes, { name: 'health-routes', encapsulate: true, dependencies: ['database'] })
