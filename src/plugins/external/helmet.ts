import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import helmet from '@fastify/helmet'

/**
 * Security headers. The CSP is strict and still lets Swagger UI at /docs run: its scripts and
 * styles are served from this origin, it only needs inline styles and data: images.
 * @see https://github.com/fastify/fastify-helmet
 */
async function helmetPlugin (app: FastifyInstance): Promise<void> {
  await app.register(helmet, {
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
    // An API is not framed or embedded; these defaults are for documents and would only add bytes.
    crossOriginEmbedderPolicy: false,
  })
}

export default fp(helmetPlugin, { name: 'helmet' })
