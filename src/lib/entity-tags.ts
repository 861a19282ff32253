/**
 * Entity tags made of a resource's version, and the RFC 9110 comparisons of conditional requests.
 * Header syntax is checked by the route schemas; this only interprets it.
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-8.8.3
 */

export function etagOf (version: number): string {
  return `"${version}"`
}

const TAG = /(W\/)?"([^"]*)"/g

/**
 * The versions an `If-Match` value accepts, by strong comparison (a weak tag never matches); null
 * for an absent header or `*`, which accept any existing version.
 */
export function versionsMatching (ifMatch: string | undefined): number[] | null {
  if (ifMatch === undefined || ifMatch.trim() === '*') return null
  const versions: number[] = []
  for (const [, weak, opaque] of ifMatch.matchAll(TAG)) {
    if (weak === undefined && /^[1-9][0-9]{0,8}$/.test(opaque!)) versions.push(Number(opaque))
  }
  return versions
}

/** Whether an `If-None-Match` value matches `etag`, by weak comparison as RFC 9110 requires. */
export function noneMatchHolds (ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return true
  if (ifNoneMatch.trim() === '*') return false
  for (const [, , opaque] of ifNoneMatch.matchAll(TAG)) {
    if (`"${opaque}"` === etag) return false
  }
  return true
}
