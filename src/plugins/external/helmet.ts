import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import helmet, { type HelmetOptions } from 'helmet'

/**
 * Security headers. The CSP is strict and still lets Swagger UI at /docs run: its scripts and
 * styles are served from this origin, it only needs inline styles and data: images.
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
  // An API is not framed or embedded; this default is for documents and would only add bytes.
  crossOriginEmbedderPolicy: false,
}

/**
 * The headers helmet sets with these options, computed once: they do not depend on the request
 * (no CSP nonces), and building them per request (as @fastify/helmet does) showed in profiles.
 * @see https://helmetjs.github.io/
 */
function computeHeaders (): Record<string, string> {
  const headers: Record<string, string> = {}
  const response = {
    setHeader: (name: string, value: unknown) => { headers[name.toLowerCase()] = String(value) },
    removeHeader: (name: string) => { delete headers[name.toLowerCase()] },
  }
  helmet(options)({} as IncomingMessage, response as unknown as ServerResponse, () => {})
  return headers
}

async function helmetPlugin (app: FastifyInstance): Promise<void> {
  const headers = computeHeaders()
  app.addHook('onRequest', (_request, reply, done) => {
    reply.headers(headers)
    done()
  })
}

export default fp(helmetPlugin, { name: 'helmet' })
