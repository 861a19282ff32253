import { createHash } from 'node:crypto'
import { and, eq, gt, sql } from 'drizzle-orm'
import type { Session } from 'fastify'
import { type Database, deleteExpired } from '../db/client.js'
import { sessions } from '../db/schema.js'

declare module 'fastify' {
  interface Session {
    /** Set at login; a session without it belongs to a visitor who has not logged in. */
    userId?: string
    /** The user's password-change time at login (ms): a later change ends the session. */
    passwordChangedAt?: number
    /** A one-time message for the next page (Post/Redirect/Get). */
    flash?: string
    /** The CSRF secret (@fastify/csrf-protection). */
    _csrf?: string
  }
}

/** The session cookie's name; its path is /app, so the API never receives it. */
export const SESSION_COOKIE = 'tasks_session'

type Done = (err?: unknown) => void

export interface SessionTtl {
  idleSeconds: number
  absoluteSeconds: number
}

const hashOf = (sessionId: string) => createHash('sha256').update(sessionId).digest('base64url')

/**
 * The @fastify/session store, in PostgreSQL so that any instance serves any page. A session ends by
 * expiring rather than by deletion: the upsert of a request still in flight when the user logged out
 * then finds an ended row and leaves it ended, instead of inserting the session again.
 */
export function createSessionStore (db: Database, ttl: SessionTtl) {
  const idle = sql`now() + make_interval(secs => ${ttl.idleSeconds})`
  const absolute = sql`now() + make_interval(secs => ${ttl.absoluteSeconds})`

  return {
    get (sessionId: string, done: (err: unknown, session?: Session | null) => void): void {
      db.select({ data: sessions.data }).from(sessions)
        .where(and(eq(sessions.idHash, hashOf(sessionId)), gt(sessions.expiresAt, sql`now()`), gt(sessions.absoluteExpiresAt, sql`now()`)))
        .limit(1)
        .then(([row]) => { done(null, (row?.data ?? null) as Session | null) }, done)
    },

    set (sessionId: string, session: Session, done: Done): void {
      const data = JSON.parse(JSON.stringify(session)) as Record<string, unknown>
      const userId = typeof session.userId === 'string' ? session.userId : null
      db.insert(sessions).values({
        idHash: hashOf(sessionId),
        userId,
        data,
        expiresAt: sql`least(${idle}, ${absolute})`,
        absoluteExpiresAt: absolute,
      }).onConflictDoUpdate({
        target: sessions.idHash,
        set: { userId, data, expiresAt: sql`least(${idle}, ${sessions.absoluteExpiresAt})` },
        setWhere: gt(sessions.expiresAt, sql`now()`),
      }).then(() => { done() }, done)
    },

    destroy (sessionId: string, done: Done): void {
      db.update(sessions).set({ expiresAt: sql`now()`, data: {} })
        .where(eq(sessions.idHash, hashOf(sessionId)))
        .then(() => { done() }, done)
    },

    /** Deletes ended and expired sessions; returns how many. */
    purgeExpired: async (): Promise<number> => await deleteExpired(db, sessions, sessions.expiresAt),
  }
}

export type SessionStore = ReturnType<typeof createSessionStore>
