import { createHash } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Database } from '../db/client.js'
import type { StoredResponse } from '../repositories/idempotency-keys.js'

/**
 * JSON with every object's keys in sorted order, so that two bodies that differ only in key order
 * and white space have one text.
 */
function canonicalJson (value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value).sort()
      .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`)
    return `{${entries.join(',')}}`
  }
  return JSON.stringify(value)
}

/** Identifies a request by method, route and body. */
function fingerprintOf (request: FastifyRequest): string {
  return createHash('sha256')
    .update(`${request.method} ${request.routeOptions.url ?? request.url}\n`)
    .update(canonicalJson(request.body ?? null))
    .digest('base64url')
}

/**
 * Answers a POST that honours `Idempotency-Key` (the route declares `IdempotencyHeaders`, the
 * `Idempotent-Replayed` header and a 409 with `Retry-After`). `work` does the request's writes on
 * the transaction it is given and says what to answer. With a key, that runs once per key and
 * caller (src/repositories/idempotency-keys.ts), and a repeat gets the stored answer with
 * `Idempotent-Replayed: true`. Without one, `work` gets no transaction and its repositories run
 * their own statements.
 */
export async function answerOnce (
  request: FastifyRequest,
  reply: FastifyReply,
  work: (tx?: Database) => Promise<StoredResponse>,
): Promise<FastifyReply> {
  const key = request.headers['idempotency-key']
  if (typeof key !== 'string') {
    const { status, headers, body } = await work()
    return await reply.code(status).headers(headers).send(body)
  }
  const claim = { userId: request.auth!.userId, key, fingerprint: fingerprintOf(request) }
  const { response, replayed } = await request.server.idempotencyKeysRepository.run(claim, work)
  if (replayed) reply.header('idempotent-replayed', 'true')
  return await reply.code(response.status).headers(response.headers).send(response.body)
}
