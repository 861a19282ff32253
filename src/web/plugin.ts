import { randomBytes } from 'node:crypto'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import cookie from '@fastify/cookie'
import csrfProtection from '@fastify/csrf-protection'
import formbody from '@fastify/formbody'
import session from '@fastify/session'
import fastifyStatic from '@fastify/static'
import view from '@fastify/view'
import type { Config } from '../config.js'
import type { UserRow } from '../db/schema.js'
import { type ProblemError, statusOf, titleOf } from '../errors.js'
import { classifyError } from '../plugins/app/error-classification.js'
import { documentSecurityHeadersWithFormTargets } from '../plugins/external/helmet.js'
import accountMailPages from './pages/account-mail.js'
import authPages from './pages/auth.js'
import memberPages from './pages/index.js'
import { createSessionStore, SESSION_COOKIE } from '../repositories/sessions.js'
import { publicDir, templateEngine, templatesDir } from './views.js'

declare module 'fastify' {
  interface FastifyReply {
    /**
     * Renders a page with what every page shows: the user, a CSRF token for its forms, the flash
     * message, and `here` (the page's address, for forms that come back to it; only a GET has one).
     */
    page: (template: string, data?: Record<string, unknown>) => Promise<FastifyReply>
  }
  interface FastifyRequest {
    /** The logged-in user of a page under /app (set by the member pages' guard). */
    webUser: UserRow | null
  }
}

interface WebOptions {
  config: Config
}

const statusTitles: Record<number, string> = {
  400: 'That request was not valid',
  403: 'That is not allowed',
  404: 'Page not found',
  413: 'That was too much to send',
  429: 'Too many requests',
  500: 'Something went wrong',
  503: 'The service is unavailable',
}

/** What a page says of an error: the shared classification, in words for people rather than programs. */
function describe (error: FastifyError | ProblemError): { status: number, detail: string, headers: Record<string, string> } {
  const { code, extras } = classifyError(error)
  const status = statusOf(code)
  // A 500's message may hold internals: people get the request id, the log gets the error.
  if (status === 500) return { status, detail: 'An unexpected error occurred. Quote the reference below when reporting it.', headers: {} }
  // The list of schema violations speaks of JSON pointers, which mean nothing on a page.
  const detail = extras.errors !== undefined ? 'Some of what was sent is not valid.' : extras.detail ?? titleOf(code)
  return { status, detail, headers: extras.headers ?? {} }
}

/**
 * The web pages under /app (register with that prefix): server-rendered, working without
 * JavaScript, on the same repositories as the API. Errors here are HTML pages; the API's
 * problem+json handler keeps everything else, because Fastify scopes error and 404 handlers to
 * the plugin that sets them.
 */
async function webPlugin (app: FastifyInstance, opts: WebOptions): Promise<void> {
  const { config } = opts

  // Pages are not the API: none of them belongs in the OpenAPI document.
  app.addHook('onRoute', (route) => { route.schema = { ...route.schema, hide: true } })
  // The provider's sign-in page is on its issuer's origin at every provider we know of.
  app.addHook('onRequest', documentSecurityHeadersWithFormTargets(config.OIDC_ISSUER === undefined ? [] : [new URL(config.OIDC_ISSUER).origin]))

  await app.register(view, {
    engine: { nunjucks: templateEngine },
    templates: templatesDir,
    production: config.NODE_ENV === 'production',
    options: { autoescape: true, throwOnUndefined: false, trimBlocks: true, lstripBlocks: true, noCache: config.NODE_ENV === 'development' },
  })

  async function renderError (request: FastifyRequest, reply: FastifyReply, status: number, detail: string): Promise<FastifyReply> {
    const html = await reply.viewAsync('error', {
      status,
      heading: statusTitles[status] ?? statusTitles[status >= 500 ? 500 : 400],
      detail,
      requestId: request.id,
      retryAfter: reply.getHeader('retry-after'),
    })
    return reply.code(status).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(html)
  }

  app.setErrorHandler(async (error: FastifyError | ProblemError, request, reply) => {
    const { status, detail, headers } = describe(error)
    if (status >= 500) request.log.error({ err: error }, 'page failed')
    else request.log.debug({ status, detail }, 'page request rejected')
    reply.headers(headers)
    return await renderError(request, reply, status, detail)
  })
  app.setNotFoundHandler(async (request, reply) => await renderError(request, reply, 404, 'There is no page at this address.'))

  // Static files need no session: a scope of their own keeps the session hooks off them.
  await app.register(async (assets) => {
    await assets.register(fastifyStatic, { root: publicDir, prefix: '/static/', maxAge: '1h', index: false })
  })

  const store = createSessionStore(app.db, { idleSeconds: config.SESSION_IDLE_TTL, absoluteSeconds: config.SESSION_ABSOLUTE_TTL })
  app.addPurgeJob('web sessions', store.purgeExpired)

  await app.register(async (pages) => {
    await pages.register(cookie)
    await pages.register(session, {
      store,
      // Signs with the current key, accepts the previous ones' (SECRET_KEY_PREVIOUS) too.
      secret: app.keys.keysFor('sessionCookie').map((key) => key.toString('base64url')),
      cookieName: SESSION_COOKIE,
      idGenerator: () => randomBytes(32).toString('base64url'),
      // A visitor gets a session when a form needs a CSRF secret, not on every page view.
      saveUninitialized: false,
      // Every request pushes the idle expiry (store and cookie) forward.
      rolling: true,
      cookie: {
        path: '/app',
        httpOnly: true,
        sameSite: 'lax',
        // Secure when the request came over HTTPS (X-Forwarded-Proto counts with TRUST_PROXY).
        secure: 'auto',
        maxAge: config.SESSION_IDLE_TTL * 1000,
      },
    })
    await pages.register(csrfProtection, { sessionPlugin: '@fastify/session' })
    await pages.register(formbody)

    // Pages are per person: never stored by shared caches, nor shown again by Back after logout.
    pages.addHook('onRequest', async (_request, reply) => { reply.header('cache-control', 'no-store') })
    // Every form posts with a CSRF token; checking every POST here means no form can forget it.
    pages.addHook('preHandler', (request, reply, done) => {
      if (request.method === 'POST') pages.csrfProtection(request, reply, done)
      else done()
    })

    pages.decorateRequest('webUser', null)
    pages.decorateReply('page', async function (this: FastifyReply, template: string, data: Record<string, unknown> = {}) {
      const { session } = this.request
      const flash = session.flash
      if (flash !== undefined) delete session.flash
      const here = this.request.method === 'GET' ? this.request.url : undefined
      const html = await this.viewAsync(template, { user: this.request.webUser, csrfToken: this.generateCsrf(), flash, here, ...data })
      return this.type('text/html; charset=utf-8').send(html)
    })

    await pages.register(authPages, { config })
    await pages.register(accountMailPages, { config })
    await pages.register(memberPages, { config })
  })
}

// Encapsulated (its error and 404 handlers are its own); named so that its dependencies are checked when it is registered.
export default fp(webPlugin, {
  name: 'web',
  encapsulate: true,
  dependencies: ['database', 'repositories', 'housekeeping', 'credentials', 'auth-cache', 'account-mail'],
})
