import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import fp from 'fastify-plugin'
import helmet, { type HelmetOptions } from 'helmet'

/**
 * Security headers for HTML documents (/docs and /app). The CSP is strict and still lets Swagger
 * UI run: its scripts and styles are served from this origin, it only needs inline styles and
 * data: images.
 */
const options: HelmetOptions = {
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'", "'unsafe-inline'"],
      imgSrc: ["'self'", 'data:'],
      connectSrc: ["'self'"],
      fontSrc: ["'self'"],
      objectSrc: ["'none'"],
      baseUri: ["'self'"],
      formAction: ["'self'"],
      frameAncestors: ["'none'"],
    },
  },
  // No page needs cross-origin isolation; the header would only add bytes.
  crossOriginEmbedderPolicy: false,
}

/**
 * The headers helmet sets with these options, computed once: they do not depend on the request
 * (no CSP nonces), and building them per request (as @fastify/helmet does) showed in profiles.
 * @see https://helmetjs.github.io/
 */
function computeHeaders (formTargets: string[] = []): Record<string, string> {
  const headers: Record<string, string> = {}
  const response = {
    setHeader: (name: string, value: unknown) => { headers[name.toLowerCase()] = String(value) },
    removeHeader: (name: string) => { delete headers[name.toLowerCase()] },
  }
  const csp = options.contentSecurityPolicy as { directives: Record<string, string[]> }
  const withTargets = { ...options, contentSecurityPolicy: { ...csp, directives: { ...csp.directives, formAction: [...csp.directives.formAction!, ...formTargets] } } }
  helmet(withTargets)({} as IncomingMessage, response as unknown as ServerResponse, () => {})
  return headers
}

const documentHeaders = computeHeaders()

/**
 * Every other response (JSON and problem+json) gets the set the OWASP REST Security Cheat Sheet
 * recommends for APIs, plus CORP against cross-origin no-cors reads; the CSP forbids everything,
 * since a JSON response is never a document that loads anything. The headers helmet adds for
 * documents only (referrer, DNS prefetch, download, opener and agent-cluster policies) would be
 * about 500 bytes on every response for no protection. `/v1` responses also get
 * `cache-control: no-store` (app.ts).
 * @see https://cheatsheetseries.owasp.org/cheatsheets/REST_Security_Cheat_Sheet.html#security-headers
 */
export const apiHeaders: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'cross-origin-resource-policy': 'same-origin',
  'strict-transport-security': documentHeaders['strict-transport-security']!,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
}

/** An onRequest hook setting `headers`, built once. */
function setting (headers: Record<string, string>) {
  return (_request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    reply.headers(headers)
    done()
  }
}

/** For the contexts that serve HTML: replaces the API's headers with the document set. */
export const documentSecurityHeaders = setting(documentHeaders)

/**
 * The document set for pages whose forms also lead to `origins`: a form of the /app pages that
 * starts a single sign-on redirects to the OpenID provider, and browsers hold redirects after a
 * form to `form-action` too.
 */
export function documentSecurityHeadersWithFormTargets (origins: string[]) {
  return setting(computeHeaders(origins))
}

async function helmetPlugin (app: FastifyInstance): Promise<void> {
  app.addHook('onRequest', setting(apiHeaders))
}

export default fp(helmetPlugin, { name: 'helmet' })
