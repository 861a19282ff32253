import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import type { PGlite } from '@electric-sql/pglite'
import { projectRoot } from '../lib/project-root.js'
import { type Database, type DatabaseHandle, queryRows } from './client.js'

export const migrationsFolder = join(projectRoot, 'drizzle')

/** Any constant works; it only has to be the same for every instance of this service. */
const MIGRATION_LOCK_KEY = 7_240_311_905

interface Journal { entries: Array<{ when: number, tag: string }> }

/** The `when` of the newest migration in drizzle-kit's journal. */
export function latestMigrationMillis (): number {
  const journal = JSON.parse(readFileSync(join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as Journal
  return Math.max(0, ...journal.entries.map((e) => e.when))
}

/** True when the database holds every migration this code ships (drizzle's own bookkeeping). */
export async function migrationsApplied (db: Database): Promise<boolean> {
  // A database never migrated has no such table: that is a "no", not an error.
  const rows = await queryRows<{ created_at: string | null }>(db,
    sql`select max(created_at)::text as created_at from drizzle.__drizzle_migrations`).catch(() => null)
  return Number(rows?.[0]?.created_at ?? 0) >= latestMigrationMillis()
}

/**
 * Applies pending migrations on PostgreSQL on a connection of its own, under an advisory lock, so
 * several instances starting together migrate once and the others wait, then find nothing to do.
 */
export async function migratePostgres (url: string): Promise<void> {
  const { default: postgres } = await import('postgres')
  const { drizzle } = await import('drizzle-orm/postgres-js')
  const { migrate } = await import('drizzle-orm/postgres-js/migrator')
  const client = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 })
  try {
    await client`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`
    try {
      await migrate(drizzle({ client }), { migrationsFolder })
    } finally {
      await client`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`
    }
  } finally {
    await client.end({ timeout: 5 })
  }
}

/**
 * PGlite has one connection in one process, so there is nobody to lock against. When the database
 * already holds the newest migration, drizzle's migrator would apply nothing: it is skipped, as its
 * statements cost more at start than the one query that tells.
 */
export async function migratePglite (handle: DatabaseHandle & { client: PGlite }): Promise<void> {
  if (await migrationsApplied(handle.db)) return
  const { drizzle } = await import('drizzle-orm/pglite')
  const { migrate } = await import('drizzle-orm/pglite/migrator')
  await migrate(drizzle({ client: handle.client }), { migrationsFolder })
}
