import { sql } from 'drizzle-orm'
import type { PgColumn } from 'drizzle-orm/pg-core'

/**
 * Session settings every connection gets, so a timestamptz's text is the same on any server:
 * `2026-11-23 09:30:00.1234+00` (UTC, ISO style, trailing zeros of the fraction dropped).
 */
export const timestampSession = { TimeZone: 'UTC', DateStyle: 'ISO' } as const

/**
 * A timestamptz column selected under `name` as PostgreSQL's own text with `T` for the space
 * (`2026-11-23T09:30:00.1234+00`); `rfc3339FromPostgres` finishes it. Drizzle does not map an SQL
 * expression, and both drivers pass text through.
 */
export const timestampText = <T extends string | null> (column: PgColumn, name: string) =>
  sql<T>`replace(${column}::text, ' ', 'T')`.as(name)

/** What follows the seconds, by how many fractional digits PostgreSQL printed (it drops trailing zeros). */
const fractionEnds = ['.000000Z', '00000Z', '0000Z', '000Z', '00Z', '0Z', 'Z']

/**
 * The text `timestampText` selects, as RFC 3339 with all six fractional digits. Exact (a JS Date
 * would drop the microseconds, and keyset cursors must compare equal to what is stored), and cheap:
 * a `to_char` per value on the database server showed in its CPU time per list request.
 *
 * The result is a slice of the driver's string plus a constant, and should stay so: built from
 * smaller pieces instead (the date, a `T`, the time, the padded fraction), the same text put list
 * requests under load into a costly V8 garbage-collection mode. Why the shape of the string
 * decides it is not known (figures in docs/decisions/0005-timestamps-as-postgresql-text.md).
 */
export function rfc3339FromPostgres (text: string): string {
  // "YYYY-MM-DDTHH:MM:SS" (19 characters), an optional ".f" of 1 to 6 digits, then "+00".
  const end = text.length - 3
  if (text.charCodeAt(10) !== 84 || !text.endsWith('+00') || (end !== 19 && (text.charCodeAt(19) !== 46 || end < 21 || end > 26))) {
    throw new Error(`Unexpected timestamp text from the database: ${text} (the session must use TimeZone UTC and DateStyle ISO)`)
  }
  return text.slice(0, end) + fractionEnds[end === 19 ? 0 : end - 20]!
}
