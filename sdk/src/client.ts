import { EventSourceParserStream } from 'eventsource-parser/stream'
import createClient, { type Client } from 'openapi-fetch'
import { certificateFetch, type ClientCertificate } from './client-certificate.js'
import { idempotentPosts } from './generated/idempotent-posts.js'
import type { Event, paths, TokenPair } from './generated/openapi.js'
import { ProblemError, toProblem, unwrap } from './problem.js'

/** A bearer session (the refresh token lets the client renew an expired access token) or an API key. */
export type Credentials =
  | { accessToken: string, refreshToken?: string }
  | { apiKey: string }

export interface TasksApiOptions {
  /** Where the API is served, e.g. `https://tasks.example.com` (no `/v1`). */
  baseUrl: string
  credentials?: Credentials
  /** Called whenever the session changes (log-in, automatic refresh, log-out, refresh refused), to persist it. */
  onCredentialsChange?: (credentials: Credentials | undefined) => void
  /**
   * Retries for requests that are safe to repeat: GETs, and POSTs that honour `Idempotency-Key`,
   * which then get a generated key unless the caller sent one. Retried on network failure, 429
   * and 503, after `Retry-After` when given. Default 0.
   */
  retries?: number
  /** Longest wait between two attempts, in ms. Default 5000. */
  maxRetryDelayMs?: number
  fetch?: (request: Request) => Promise<Response>
  /**
   * Present this client certificate on every connection (Node.js, through undici), for an API key
   * bound to it (`client_cert_sha256`). Not with `fetch`, which then decides the connection itself.
   */
  clientCertificate?: ClientCertificate
}

/** A second factor: a plain string is the 6-digit code of an authenticator app. */
export type SecondFactor = string | { code: string } | { recovery_code: string }

/** What `onMfaRequired` is told each time it is asked. */
export interface MfaChallenge {
  username: string
  /** Set when this is another try: the refusal of the previous answer (401 `INVALID_MFA_CODE`). */
  error?: ProblemError
}

export interface LogInOptions {
  /**
   * Asked for a second factor when the account has two-factor on (the server answered 401
   * `MFA_REQUIRED`); the answer goes with the login's `mfa_token` to `POST /v1/auth/login/mfa`. After
   * a wrong one it is asked again, with `error`, until the server refuses otherwise (the `mfa_token`
   * is spent after 5 wrong answers; the username's failed-login limit counts them too), which is
   * thrown. Throw to give up. Without it, the `MFA_REQUIRED` ProblemError is thrown, with
   * `problem.mfa_token`.
   */
  onMfaRequired?: (challenge: MfaChallenge) => SecondFactor | Promise<SecondFactor>
}

type GetPath = { [P in keyof paths]: paths[P]['get'] extends undefined ? never : P }[keyof paths]
/** The GET paths that answer 200 with `{ items, next_cursor }`. */
export type PagedPath = {
  [P in GetPath]: paths[P]['get'] extends { responses: { 200: { content: { 'application/json': { items: unknown[], next_cursor: string | null } } } } } ? P : never
}[GetPath]
type Page<P extends PagedPath> = paths[P]['get']['responses'][200]['content']['application/json']
type PageQuery<P extends PagedPath> = Omit<NonNullable<paths[P]['get']['parameters']['query']>, 'cursor'>
/** The path parameters of a paged collection nested in a resource (`{ id }` of a project's members). */
type PagePathParams<P extends PagedPath> = NonNullable<paths[P]['get']['parameters']['path']>

export type TasksApi = Client<paths> & {
  /** The current credentials (they change on refresh). */
  readonly credentials: Credentials | undefined
  setCredentials: (credentials: Credentials | undefined) => void
  /** Logs in, with a second factor from `options.onMfaRequired` when the account asks for one, and keeps the token pair for the following calls. */
  logIn: (username: string, password: string, options?: LogInOptions) => Promise<TokenPair>
  /**
   * Finishes a single sign-on: exchanges the one-time `code` that `GET /v1/auth/oidc/authorize`
   * ended with (at your `redirect_uri`, within 60 s) for a token pair, and uses it from then on.
   */
  logInWithCode: (code: string) => Promise<TokenPair>
  /** Revokes the refresh token's family on the server and forgets the session. */
  logOut: () => Promise<void>
  /**
   * Every item of a paged collection, fetching page after page through `next_cursor`; `pathParams`
   * fill a nested collection's path (`items('/v1/projects/{id}/members', {}, { id })`).
   */
  items: <P extends PagedPath>(path: P, query?: PageQuery<P>, pathParams?: PagePathParams<P>) => AsyncGenerator<Page<P>['items'][number], void, undefined>
  /**
   * The change feed: every event of your projects after `after` (from the oldest kept when omitted;
   * from now with `stream`), each once and in order, then new ones as they come, until `signal`
   * aborts. It polls, or with `stream: true` follows the live stream, reconnecting after the last
   * event whenever the server ends it. Keep the id of the last event you handled to resume from it.
   * A resume point past the feed's retention throws a ProblemError with code `SYNC_EXPIRED`: list
   * again, then start without `after`.
   */
  events: (options?: EventsOptions) => AsyncGenerator<Event, void, undefined>
}

export interface EventsOptions {
  /** Where to resume: an event's id, or a `next_after`. */
  after?: string
  /** Events per request, 1 to 500. Default 100. */
  limit?: number
  /** How long to wait before polling again once caught up, in ms. Default 1000. */
  intervalMs?: number
  /** Ends the iteration (between polls, during the wait, and while a stream is open). */
  signal?: AbortSignal
  /** Follow `GET /v1/events/stream` instead of polling: events as they happen. */
  stream?: boolean
}

const retryableStatus = new Set([429, 503])

function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => { clearTimeout(timer); resolve() }
    const timer = setTimeout(() => { signal?.removeEventListener('abort', done); resolve() }, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}

/** The client: every operation of the API, typed from openapi.json, with the session handled. */
export function createTasksApi (options: TasksApiOptions): TasksApi {
  const baseFetch = options.fetch ??
    (options.clientCertificate === undefined ? (request: Request) => globalThis.fetch(request) : certificateFetch(options.clientCertificate))
  const baseUrl = options.baseUrl.replace(/\/+$/, '')
  const authPath = new URL(`${baseUrl}/v1/auth/`).pathname
  const retries = options.retries ?? 0
  const maxRetryDelayMs = options.maxRetryDelayMs ?? 5000
  let credentials = options.credentials
  let refreshing: Promise<void> | undefined

  function setCredentials (next: Credentials | undefined): void {
    credentials = next
    options.onCredentialsChange?.(next)
  }

  function authorize (request: Request): string | undefined {
    if (credentials === undefined) return undefined
    if ('apiKey' in credentials) {
      request.headers.set('x-api-key', credentials.apiKey)
      return undefined
    }
    request.headers.set('authorization', `Bearer ${credentials.accessToken}`)
    return credentials.accessToken
  }

  // Refresh tokens rotate and reusing a rotated one revokes the whole session, so concurrent 401s
  // share one refresh instead of racing with the same token.
  function refresh (): Promise<void> {
    refreshing ??= (async () => {
      const current = credentials
      if (current === undefined || !('refreshToken' in current) || current.refreshToken === undefined) return
      const plain = createClient<paths>({ baseUrl, fetch: baseFetch })
      const { data, response } = await plain.POST('/v1/auth/refresh', { body: { refresh_token: current.refreshToken } })
      if (data !== undefined) setCredentials({ accessToken: data.access_token, refreshToken: data.refresh_token })
      else if (response.status === 401) setCredentials(undefined)
    })().finally(() => { refreshing = undefined })
    return refreshing
  }

  async function send (request: Request): Promise<Response> {
    const repeatable = retries > 0 && (request.method === 'GET' || request.headers.has('idempotency-key'))
    for (let attempt = 0; ; attempt++) {
      const last = !repeatable || attempt >= retries
      const outgoing = last ? request : request.clone()
      let response: Response
      try {
        response = await baseFetch(outgoing)
      } catch (error) {
        if (last) throw error
        await sleep(Math.min(200 * 2 ** attempt, maxRetryDelayMs))
        continue
      }
      if (last || !retryableStatus.has(response.status)) return response
      const retryAfter = Number(response.headers.get('retry-after'))
      await response.body?.cancel()
      await sleep(Math.min(Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : 200 * 2 ** attempt, maxRetryDelayMs))
    }
  }

  async function sessionFetch (request: Request): Promise<Response> {
    const refreshable = credentials !== undefined && 'refreshToken' in credentials && credentials.refreshToken !== undefined &&
      !new URL(request.url).pathname.startsWith(authPath)
    const again = refreshable ? request.clone() : undefined
    const sentToken = authorize(request)
    const response = await send(request)
    if (response.status !== 401 || again === undefined) return response
    // Another call may have refreshed while this one was on its way.
    if (credentials !== undefined && 'accessToken' in credentials && credentials.accessToken === sentToken) await refresh()
    if (credentials === undefined || !('accessToken' in credentials) || credentials.accessToken === sentToken) return response
    await response.body?.cancel()
    authorize(again)
    return await send(again)
  }

  const client = createClient<paths>({ baseUrl, fetch: sessionFetch })
  if (retries > 0) {
    client.use({
      onRequest ({ request, schemaPath }) {
        if (request.method === 'POST' && idempotentPosts.has(schemaPath) && !request.headers.has('idempotency-key')) {
          request.headers.set('idempotency-key', crypto.randomUUID())
        }
        return request
      },
    })
  }

  async function * items<P extends PagedPath> (path: P, query?: PageQuery<P>, pathParams?: PagePathParams<P>): AsyncGenerator<Page<P>['items'][number], void, undefined> {
    // openapi-fetch cannot check a call whose path is a type parameter; PagedPath guarantees the shape.
    const get = client.GET as (path: P, init: unknown) => Promise<{ data?: Page<P>, error?: unknown, response: Response }>
    let cursor: string | undefined
    do {
      const { data: page, error, response } = await get(path, { params: { path: pathParams, query: { ...query, ...(cursor === undefined ? {} : { cursor }) } } })
      if (page === undefined) throw new ProblemError(toProblem(error, response), response)
      yield * page.items as Array<Page<P>['items'][number]>
      cursor = page.next_cursor ?? undefined
    } while (cursor !== undefined)
  }

  async function * events (options: EventsOptions = {}): AsyncGenerator<Event, void, undefined> {
    if (options.stream === true) {
      yield * streamedEvents(options)
      return
    }
    const limit = options.limit ?? 100
    let after = options.after
    while (options.signal?.aborted !== true) {
      const query = { limit, ...(after === undefined ? {} : { after }) }
      const { data: page, error, response } = await client.GET('/v1/events', { params: { query }, signal: options.signal })
      if (page === undefined) throw new ProblemError(toProblem(error, response), response)
      yield * page.items
      after = page.next_after
      // A short page: caught up. next_after may be past the last event, so it is where to resume.
      if (page.items.length < limit) await sleep(options.intervalMs ?? 1000, options.signal)
    }
  }

  /** The live stream, reopened after the last event received whenever it ends. */
  async function * streamedEvents (options: EventsOptions): AsyncGenerator<Event, void, undefined> {
    let after = options.after
    let retryMs = 2000
    while (options.signal?.aborted !== true) {
      const { data: body, error, response } = await client.GET('/v1/events/stream', {
        params: { query: after === undefined ? {} : { after } },
        headers: { accept: 'text/event-stream' },
        parseAs: 'stream',
        signal: options.signal,
      }).catch((err: unknown) => {
        if (options.signal?.aborted === true) return { data: undefined, error: undefined, response: undefined }
        throw err
      })
      if (response === undefined) return
      if (body === undefined || body === null) throw new ProblemError(toProblem(error, response), response)
      const reader = body
        .pipeThrough(new TextDecoderStream())
        .pipeThrough(new EventSourceParserStream({ onRetry: (ms) => { retryMs = ms } }))
        .getReader()
      try {
        for (;;) {
          const { done, value } = await reader.read()
          if (done) break
          const event = JSON.parse(value.data) as Event
          after = event.id
          yield event
        }
      } catch {
        // A broken connection: reconnect after the last event, as when the server ends the stream.
      } finally {
        await reader.cancel().catch(() => {})
      }
      await sleep(retryMs, options.signal)
    }
  }

  /** The second step of a login the server refused with MFA_REQUIRED; any other refusal is thrown as it is. */
  async function secondStep (refusal: unknown, username: string, onMfaRequired: LogInOptions['onMfaRequired']): Promise<TokenPair> {
    const mfaToken = refusal instanceof ProblemError && refusal.code === 'MFA_REQUIRED' ? refusal.problem.mfa_token : undefined
    if (mfaToken === undefined || onMfaRequired === undefined) throw refusal
    let error: ProblemError | undefined
    for (;;) {
      const answer = await onMfaRequired(error === undefined ? { username } : { username, error })
      const factor = typeof answer === 'string' ? { code: answer } : answer
      // Apps show a code as `123 456`; the server takes the digits alone.
      const body = 'code' in factor ? { mfa_token: mfaToken, code: factor.code.replace(/\s/g, '') } : { mfa_token: mfaToken, recovery_code: factor.recovery_code }
      try {
        return await unwrap(client.POST('/v1/auth/login/mfa', { body }))
      } catch (refused) {
        if (!(refused instanceof ProblemError) || refused.code !== 'INVALID_MFA_CODE') throw refused
        error = refused
      }
    }
  }

  const api = Object.assign(client, {
    setCredentials,
    async logIn (username: string, password: string, options: LogInOptions = {}): Promise<TokenPair> {
      const tokens = await unwrap(client.POST('/v1/auth/login', { body: { username, password } }))
        .catch(async (error: unknown) => await secondStep(error, username, options.onMfaRequired))
      setCredentials({ accessToken: tokens.access_token, refreshToken: tokens.refresh_token })
      return tokens
    },
    async logInWithCode (code: string): Promise<TokenPair> {
      const tokens = await unwrap(client.POST('/v1/auth/token', {
        body: { grant_type: 'authorization_code', code },
        // The OAuth2 token endpoint takes a form (RFC 6749 §4.1.3).
        bodySerializer: (body) => new URLSearchParams(body as Record<string, string>).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      }))
      setCredentials({ accessToken: tokens.access_token, refreshToken: tokens.refresh_token })
      return tokens
    },
    async logOut (): Promise<void> {
      if (credentials !== undefined && 'refreshToken' in credentials && credentials.refreshToken !== undefined) {
        await unwrap(client.POST('/v1/auth/logout', { body: { refresh_token: credentials.refreshToken } }))
      }
      setCredentials(undefined)
    },
    items,
    events,
  })
  // A getter, which Object.assign would have copied as a value.
  Object.defineProperty(api, 'credentials', { get: () => credentials, enumerable: true })
  return api as TasksApi
}
