import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Database, DatabaseHandle } from '../../db/client.js'

declare module 'fastify' {
  interface FastifyInstance {
    database: DatabaseHandle
    db: Database
  }
}

/** The app closes the handle it is built with, unless the caller keeps it for further apps (tests). */
async function databasePlugin (app: FastifyInstance, opts: { database: DatabaseHandle, keepOpen: boolean }): Promise<void> {
  app.decorate('database', opts.database)
  app.decorate('db', opts.database.db)
  if (!opts.keepOpen) app.addHook('onClose', async () => { await opts.database.close() })
}

export default fp(databasePlugin, { name: 'database' })
