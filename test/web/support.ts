/** A cookie-keeping client over `app.inject`, as a browser without JavaScript would use the pages. */
import { randomBytes } from 'node:crypto'
import type { SQL } from 'drizzle-orm'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { build, type T, uniqueName } from '../helper.js'

/** Limits high enough that only the tests about limits meet them. */
export const relaxedLimits = { AUTH_RATE_LIMIT_MAX: '10000', LOGIN_FAILURES_MAX: '10000', RATE_LIMIT_MAX: '10000' }

export async function buildWeb (t: T, overrides: Record<string, string> = {}): Promise<FastifyInstance> {
  return await build(t, { ...relaxedLimits, ...overrides })
}

/** Rows of a query, from postgres.js (an array) and PGlite (`{ rows }`) alike. */
export async function rows<R> (app: FastifyInstance, query: SQL): Promise<R[]> {
  const result = await app.db.execute(query) as unknown
  return (Array.isArray(result) ? result : (result as { rows: R[] }).rows) as R[]
}

export type FormFields = Record<string, string | string[]>

export class PageClient {
  readonly cookies = new Map<string, string>()
  /** The CSRF token of the last page that had a form. */
  csrf: string | undefined

  constructor (readonly app: FastifyInstance, readonly headers: Record<string, string> = {}) {}

  private remember (res: LightMyRequestResponse): LightMyRequestResponse {
    for (const cookie of res.cookies as Array<{ name: string, value: string, maxAge?: number, expires?: Date }>) {
      const gone = cookie.maxAge === 0 || (cookie.expires !== undefined && cookie.expires.getTime() <= Date.now()) || cookie.value === ''
      if (gone) this.cookies.delete(cookie.name)
      else this.cookies.set(cookie.name, cookie.value)
    }
    const token = /name="_csrf" value="([^"]+)"/.exec(res.body)?.[1]
    if (token !== undefined) this.csrf = token
    return res
  }

  private cookieHeader (): Record<string, string> {
    return this.cookies.size === 0 ? {} : { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') }
  }

  async get (url: string): Promise<LightMyRequestResponse> {
    return this.remember(await this.app.inject({ method: 'GET', url, headers: { ...this.headers, ...this.cookieHeader() } }))
  }

  /** Posts a form with the current CSRF token unless the fields say otherwise. */
  async post (url: string, fields: FormFields = {}): Promise<LightMyRequestResponse> {
    const body = new URLSearchParams()
    if (this.csrf !== undefined && !('_csrf' in fields)) body.append('_csrf', this.csrf)
    for (const [name, value] of Object.entries(fields)) for (const v of Array.isArray(value) ? value : [value]) body.append(name, v)
    return this.remember(await this.app.inject({
      method: 'POST',
      url,
      headers: { ...this.headers, ...this.cookieHeader(), 'content-type': 'application/x-www-form-urlencoded' },
      payload: body.toString(),
    }))
  }
}

export interface PageUser { client: PageClient, username: string, password: string }

/** Signs a new user up through the pages (with `fields` such as an email); the client is logged in afterwards. */
export async function signUp (app: FastifyInstance, prefix = 'web', fields: FormFields = {}): Promise<PageUser> {
  const client = new PageClient(app)
  const username = uniqueName(prefix)
  const password = `pw-${randomBytes(8).toString('hex')}`
  await client.get('/app/signup')
  const res = await client.post('/app/signup', { username, password, ...fields })
  if (res.statusCode !== 303) throw new Error(`signup failed: ${res.statusCode} ${res.body.slice(0, 500)}`)
  return { client, username, password }
}

/** Creates a task through the form and answers its id. */
export async function createTask (user: PageUser, fields: FormFields): Promise<string> {
  await user.client.get('/app/tasks/new')
  const res = await user.client.post('/app/tasks', { priority: 'medium', ...fields })
  if (res.statusCode !== 303) throw new Error(`create failed: ${res.statusCode} ${res.body.slice(0, 500)}`)
  const list = await user.client.get('/app/tasks?sort=-created_at&limit=1')
  const id = /href="\/app\/tasks\/([0-9a-f-]{36})"/.exec(list.body)?.[1]
  if (id === undefined) throw new Error('created task not listed')
  return id
}
