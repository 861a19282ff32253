import { TLSSocket } from 'node:tls'
import type { FastifyRequest } from 'fastify'

/** The header a TLS-terminating proxy that verified the client's certificate puts its fingerprint in. */
export const CLIENT_CERT_HEADER = 'x-client-cert-sha256'

const FINGERPRINT = /^[0-9A-Fa-f]{2}(:?[0-9A-Fa-f]{2}){31}$/

/** SHA-256 of a certificate as lowercase hex without colons, the one form stored and compared. */
export function normaliseFingerprint (fingerprint: string): string {
  return fingerprint.replaceAll(':', '').toLowerCase()
}

/**
 * The SHA-256 of the client certificate this request's connection presented and had verified: by
 * this server's own TLS (against TLS_CLIENT_CA), or, with TRUST_PROXY, by the proxy in front, which
 * forwards it in CLIENT_CERT_HEADER. Undefined when there is none.
 */
export function verifiedClientCertificate (request: FastifyRequest, trustProxy: boolean): string | undefined {
  if (trustProxy) {
    const forwarded = request.headers[CLIENT_CERT_HEADER]
    if (typeof forwarded === 'string' && FINGERPRINT.test(forwarded)) return normaliseFingerprint(forwarded)
  }
  const socket = request.raw.socket
  if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined
  const fingerprint = socket.getPeerCertificate().fingerprint256
  return typeof fingerprint === 'string' && FINGERPRINT.test(fingerprint) ? normaliseFingerprint(fingerprint) : undefined
}
