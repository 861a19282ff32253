import { createHmac, timingSafeEqual } from 'node:crypto'
import type { FastifyReply } from 'fastify'
import { problem } from '../errors.js'

/**
 * Keyset paging, one way for every list (the tasks, the users, the task pages under /app): a list
 * request is normalised, its cursor is verified against the request's context, and the next page
 * is offered as `next_cursor` and as a `Link: <…>; rel="next"` header (or, on a page, a link).
 */

/** Where a page ends: the sort key of its last item, as the API renders it, and that item's id. */
export type Position = [key: string | null, id: string]

/**
 * What paging needs to know of a list's declaration: its filters, by query parameter name, and its
 * defaults. A filter's `normalise` makes equivalent values one (so they share cursors, and
 * statements), and a value that filters nothing undefined. Every filter declared here, when present,
 * is part of the cursor context: a cursor never carries over to other filters.
 */
export interface PagedList<Filters extends object, Sort extends string> {
  readonly filters: { readonly [K in keyof Filters]-?: { readonly normalise?: (value: Exclude<Filters[K], undefined>) => Filters[K] } }
  readonly defaultSort: Sort
  readonly defaultLimit: number
}

/** A list query as validated: any of the filters, and the paging parameters. */
export type ListQuery<Filters extends object, Sort extends string> =
  { readonly [K in keyof Filters]?: Filters[K] } & { readonly sort?: Sort | undefined, readonly limit?: number | undefined, readonly cursor?: string | undefined }

/**
 * A list request, normalised: every filter of the declaration (undefined when absent), the sort and
 * page size with their defaults, and where the page starts (undefined for the first page).
 */
export interface ListRequest<Filters extends object, Sort extends string> {
  readonly filters: { readonly [K in keyof Filters]-?: Filters[K] | undefined }
  readonly sort: Sort
  readonly limit: number
  readonly after: Position | undefined
}

/** An opened list request, with the context its cursors are signed for. */
export interface OpenList<Filters extends object, Sort extends string> extends ListRequest<Filters, Sort> {
  /** Who asks, the sort and every filter present, as one string. */
  readonly context: string
}

export interface PagingOptions {
  /**
   * The list's cursor keys, of its own purpose (`app.keys.keysFor('tasksCursor')`): the first signs,
   * every one verifies.
   */
  keys: Buffer[]
}

/**
 * Opaque, tamper-evident cursors: `base64url(JSON payload).base64url(MAC)`. The MAC also covers a
 * context string that the cursor does not carry (who asks, with which sort and filters), so a cursor
 * replayed under another context fails verification like a forged one.
 */
function createCursorCodec (keys: Buffer[]) {
  const signWith = (key: Buffer, context: string, payload: string) =>
    createHmac('sha256', key).update(context).update('\n').update(payload).digest().subarray(0, 16).toString('base64url')

  return {
    encode (context: string, value: unknown): string {
      const payload = Buffer.from(JSON.stringify(value)).toString('base64url')
      return `${payload}.${signWith(keys[0]!, context, payload)}`
    },

    /** The value inside `cursor`, or undefined when it is malformed, altered or from another context. */
    decode (context: string, cursor: string): unknown {
      const dot = cursor.indexOf('.')
      if (dot < 0) return undefined
      const payload = cursor.slice(0, dot)
      // Compared as text: base64url decoding would ignore changes to a final character's spare bits.
      const given = Buffer.from(cursor.slice(dot + 1))
      const verifies = (key: Buffer) => {
        const expected = Buffer.from(signWith(key, context, payload))
        return given.length === expected.length && timingSafeEqual(given, expected)
      }
      if (!keys.some(verifies)) return undefined
      // Verified, so the payload is JSON this codec wrote.
      return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
    },
  }
}

/** The 400 for a cursor that is not one of this list's for this request. */
function invalidCursor () {
  return problem('INVALID_CURSOR', 'The cursor is malformed, was altered, or belongs to another sort, other filters or another user. Start again without a cursor.', {
    errors: [{ in: 'query', path: '/cursor', message: 'is not a cursor for this query' }],
  })
}

/**
 * The URL of the next page: `path` with the parameters of `search` (a request's URL, whose query is
 * used, or parameters) in their order, and `cursor` in place of any cursor there.
 */
function nextPageUrl (path: string, search: string | URLSearchParams, cursor: string): string {
  let params: URLSearchParams
  if (typeof search === 'string') {
    const query = search.indexOf('?')
    params = new URLSearchParams(query < 0 ? '' : search.slice(query + 1))
  } else {
    params = new URLSearchParams(search)
  }
  params.set('cursor', cursor)
  return `${path}?${params.toString()}`
}

/** The `Link` header value (RFC 8288) pointing at the next page. */
function nextLink (url: string): string {
  return `<${url}>; rel="next"`
}

/** Paging for one list, its cursors signed with a key of their own (one call per list). */
export function createPaging<Filters extends object, Sort extends string> (list: PagedList<Filters, Sort>, options: PagingOptions) {
  const cursors = createCursorCodec(options.keys)
  const names = Object.keys(list.filters) as Array<keyof Filters & string>
  const normalisers = list.filters as Record<string, { normalise?: (value: never) => unknown }>

  /** The request `query` asks for, for `who`; undefined when its cursor does not verify. */
  function tryOpen (who: string, query: ListQuery<Filters, Sort>): OpenList<Filters, Sort> | undefined {
    const filters: Record<string, unknown> = {}
    const present: Record<string, unknown> = {}
    for (const name of names) {
      let value = query[name] as unknown
      const normalise = normalisers[name]!.normalise
      if (value !== undefined && normalise !== undefined) value = normalise(value as never)
      filters[name] = value
      if (value !== undefined) present[name] = value
    }
    const sort = query.sort ?? list.defaultSort
    // What a cursor is valid for, derived from the declaration: a filter it names is in here, so
    // equivalent requests (tags in another order, another limit) share cursors and no others do.
    const context = JSON.stringify([who, sort, present])
    let after: Position | undefined
    if (query.cursor !== undefined) {
      after = cursors.decode(context, query.cursor) as Position | undefined
      if (after === undefined) return undefined
    }
    return { filters: filters as OpenList<Filters, Sort>['filters'], sort, limit: query.limit ?? list.defaultLimit, after, context }
  }

  /** The `next_cursor` of a page that ends at `next`; null on the last page. */
  function cursorAfter (request: OpenList<Filters, Sort>, next: Position | null): string | null {
    return next === null ? null : cursors.encode(request.context, next)
  }

  return {
    tryOpen,
    cursorAfter,

    /** As `tryOpen`, but a cursor that does not verify is a 400 INVALID_CURSOR. */
    open (who: string, query: ListQuery<Filters, Sort>): OpenList<Filters, Sort> {
      const request = tryOpen(who, query)
      if (request === undefined) throw invalidCursor()
      return request
    },

    /** The URL at `path` of the page after `next` (null on the last page), with the parameters of `search`. */
    nextUrl (request: OpenList<Filters, Sort>, path: string, search: string | URLSearchParams, next: Position | null): string | null {
      const cursor = cursorAfter(request, next)
      return cursor === null ? null : nextPageUrl(path, search, cursor)
    },

    /**
     * An API response's page: its body, and the `Link` header to the next page (the request's own
     * query, at the next cursor) when there is one.
     */
    respond<Item> (reply: FastifyReply, request: OpenList<Filters, Sort>, requestUrl: string, page: { items: Item[], next: Position | null }): { items: Item[], next_cursor: string | null } {
      const cursor = cursorAfter(request, page.next)
      // The request's own path: a nested list's (`/v1/projects/{id}/members`) names its parent.
      if (cursor !== null) reply.header('link', nextLink(nextPageUrl(requestUrl.split('?', 1)[0]!, requestUrl, cursor)))
      return { items: page.items, next_cursor: cursor }
    },
  }
}
