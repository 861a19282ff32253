import querystring from 'fast-querystring'

/** Set on a parsed query whose text is not valid percent-encoding (see `parseQuery`). */
export const malformedQuery = Symbol('malformed query')

const strayPercent = /%(?![0-9A-Fa-f]{2})/

/**
 * Fastify's own query parser (fast-querystring), but a query that is not valid percent-encoding
 * (a `%` without two hex digits, or bytes that are not UTF-8) is marked rather than decoded
 * leniently, so that it is refused with 400 like the same fault in the path. The router calls this
 * while it routes, where a throw would not reach the error handler; a hook reads the mark.
 */
export function parseQuery (query: string): Record<string, unknown> {
  const parsed: Record<string | symbol, unknown> = query.length === 0 ? {} : querystring.parse(query)
  if (query.includes('%') && !decodes(query)) parsed[malformedQuery] = true
  return parsed
}

function decodes (query: string): boolean {
  if (strayPercent.test(query)) return false
  try {
    decodeURIComponent(query)
    return true
  } catch {
    return false
  }
}
