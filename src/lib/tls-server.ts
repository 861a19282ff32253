import { readFileSync } from 'node:fs'
import type { Server } from 'node:http'
import { createServer, type ServerOptions } from 'node:https'
import type { FastifyServerFactory } from 'fastify'
import type { Config } from '../config.js'

/**
 * The server for TLS terminated here (TLS_CERT, TLS_KEY): an HTTPS server that, with TLS_CLIENT_CA,
 * asks every client for a certificate. One without (or with one the CA did not sign) is still let
 * in, as API keys not bound to a certificate and tokens do not need one; keys bound to a certificate
 * check it (src/lib/client-certificate.ts). Undefined for plain HTTP.
 */
export function tlsServerFactory (config: Pick<Config, 'TLS_CERT' | 'TLS_KEY' | 'TLS_CLIENT_CA'>): FastifyServerFactory | undefined {
  if (config.TLS_CERT === undefined || config.TLS_KEY === undefined) return undefined
  const tls: ServerOptions = {
    cert: readFileSync(config.TLS_CERT),
    key: readFileSync(config.TLS_KEY),
    ...(config.TLS_CLIENT_CA === undefined ? {} : { ca: readFileSync(config.TLS_CLIENT_CA), requestCert: true, rejectUnauthorized: false }),
  }
  return (handler, options) => {
    const server = createServer({
      ...tls,
      // What Fastify sets on the servers it makes itself.
      ...(options.http as object),
      requestTimeout: options.requestTimeout as number,
      keepAliveTimeout: options.keepAliveTimeout as number,
    }, handler)
    return server as unknown as Server
  }
}
