import { sql } from 'drizzle-orm'
import type { PgColumn } from 'drizzle-orm/pg-core'

/**
 * Session settings every connection gets, so a timestamptz's text is the same on any server:
 * `2026-11-23 09:30:00.1234+00` (UTC, ISO style, trailing zeros of the fraction dropped).
 */
export const timestampSession = { TimeZone: 'UTC', DateStyle: 'ISO' } as const

/**
 * A timestamptz column selected as an SQL expression under `name`: Drizzle does not map it, and
 * both drivers pass the server's text through unparsed (see `rfc3339FromPostgres`).
 */
export const timestampText = <T extends string | null> (column: PgColumn, name: string) => sql<T>`${column}`.as(name)

/**
 * PostgreSQL's text of a UTC timestamptz as RFC 3339 with all six fractional digits. Exact (a JS
 * Date would drop the microseconds, and keyset cursors must compare equal to what is stored), and
 * a few string slices instead of a to_char per value on the database server, which showed in its
 * CPU time per list request.
 */
export function rfc3339FromPostgres (text: string): string {
  // "YYYY-MM-DD HH:MM:SS" (19 characters), an optional ".f" of 1 to 6 digits, then "+00".
  if (text.charCodeAt(10) !== 32 || !text.endsWith('+00') || (text.length !== 22 && text.charCodeAt(19) !== 46)) {
    throw new Error(`Unexpected timestamp text from the database: ${text} (the session must use TimeZone UTC and DateStyle ISO)`)
  }
  const fraction = text.length === 22 ? '' : text.slice(20, -3)
  return `${text.slice(0, 10)}T${text.slice(11, 19)}.${fraction.padEnd(6, '0')}Z`
}
