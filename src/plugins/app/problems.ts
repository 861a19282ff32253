import { randomUUID } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import FindMyWay, { type HTTPMethod } from 'find-my-way'
import { type ErrorCode, problem, problemType, type ProblemError, type ProblemExtras, statusOf, titleOf } from '../../errors.js'
import { type Problem, problemResponses } from '../../schemas/common.js'
import { apiHeaders } from '../external/helmet.js'
import { classifyError, UNEXPECTED_DETAIL } from './error-classification.js'

function problemDocument (code: ErrorCode, requestId: string, instance: string, extras: ProblemExtras): Problem {
  return {
    type: problemType(code),
    title: titleOf(code),
    status: statusOf(code),
    ...(extras.detail !== undefined ? { detail: extras.detail } : {}),
    instance,
    code,
    request_id: requestId,
    ...(extras.errors !== undefined ? { errors: extras.errors as Problem['errors'] } : {}),
    ...(extras.error !== undefined ? { error: extras.error } : {}),
    ...(extras.error_description !== undefined ? { error_description: extras.error_description } : {}),
    ...(extras.mfa_token !== undefined ? { mfa_token: extras.mfa_token } : {}),
  }
}

/** The request's path: without its query, and without scheme and authority for an absolute-form target. */
export function pathOf (url: string): string {
  const path = url.split('?', 1)[0]!
  return path.startsWith('/') ? path : path.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]*/, '') || '/'
}

/**
 * The `instance` of a problem found before the request's path could be used (malformed or too
 * long): it names the request instead, so the offending input is never echoed back.
 */
function requestInstance (requestId: string): string {
  return `urn:tasks-api:request:${requestId}`
}

export function sendProblem (request: FastifyRequest, reply: FastifyReply, code: ErrorCode, extras: ProblemExtras = {}): FastifyReply {
  if (extras.headers !== undefined) reply.headers(extras.headers)
  return reply.code(statusOf(code)).type('application/problem+json').send(problemDocument(code, request.id, pathOf(request.url), extras))
}

/** The headers every API response gets from the onRequest hooks, for answers sent before those run. */
function baseHeaders (requestId: string): Record<string, string> {
  return { 'x-request-id': requestId, 'cache-control': 'no-store', ...apiHeaders }
}

/**
 * Whether a route matched only by an empty parameter (`/v1/tasks/` for `/v1/tasks/:id`): a path
 * with a trailing slash is no resource (the contract's paths have none), so it answers 404.
 */
export function hasEmptyParameter (params: Record<string, unknown>): boolean {
  // On every request: a loop allocates nothing.
  for (const name in params) if (params[name] === '') return true
  return false
}

/** The 404 of a path no route serves. */
export const noRoute = (method: string, url: string) => problem('NOT_FOUND', `No route for ${method} ${pathOf(url)}.`)

/** Routed path parameters longer than this are refused with 414 (Fastify's `maxParamLength`). */
export const MAX_PARAM_LENGTH = 200

/**
 * Fastify's `frameworkErrors`: a path it cannot route (a malformed percent-encoding, or a parameter
 * past `maxParamLength`). No hook has run yet, so the usual headers are set here.
 */
export function frameworkErrorHandler (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const [code, detail]: [ErrorCode, string] = error.code === 'FST_ERR_MAX_PARAM_LENGTH'
    ? ['URI_TOO_LONG', `A path parameter is longer than ${MAX_PARAM_LENGTH} characters.`]
    : error.code === 'FST_ERR_BAD_URL'
      ? ['BAD_REQUEST', 'The request path is not valid: it holds a malformed percent-encoding.']
      : ['INTERNAL', UNEXPECTED_DETAIL]
  request.log.debug({ code: error.code }, 'request rejected before routing')
  reply.headers(baseHeaders(request.id)).code(statusOf(code)).type('application/problem+json')
    .send(problemDocument(code, request.id, requestInstance(request.id), { detail }))
}

/** Node's parser errors (see llhttp) as catalogue entries; any other is a malformed request. */
const clientErrorCodes: Record<string, [ErrorCode, string]> = {
  HPE_HEADER_OVERFLOW: ['HEADERS_TOO_LARGE', 'The request line and headers are larger than the server accepts.'],
  ERR_HTTP_REQUEST_TIMEOUT: ['REQUEST_TIMEOUT', 'The request was not received in time.'],
  HPE_INVALID_METHOD: ['NOT_IMPLEMENTED', 'The request method is not one this server implements.'],
}

/** A whole HTTP/1.1 problem response that closes the connection, for answers written to the socket. */
function rawProblemResponse (code: ErrorCode, detail: string): string {
  const requestId = randomUUID()
  const body = JSON.stringify(problemDocument(code, requestId, requestInstance(requestId), { detail }))
  const headers = { ...baseHeaders(requestId), 'content-type': 'application/problem+json; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), connection: 'close' }
  const status = statusOf(code)
  return `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body}`
}

/**
 * Answers on a socket whose request Node could not parse, then closes it. The rest of the request
 * is read and dropped for a moment first: closing a socket with unread input resets it, and a reset
 * can make the client lose the answer.
 */
function answerAndClose (socket: Duplex, response: string): void {
  socket.on('error', () => {})
  socket.end(response)
  socket.resume()
  setTimeout(() => socket.destroy(), 1000).unref()
}

/** Node's `clientError`: the request line or headers are malformed, too large, or too slow. */
export function clientErrorHandler (this: FastifyInstance, error: NodeJS.ErrnoException, socket: Duplex): void {
  // A reset connection has nobody to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const [code, detail] = clientErrorCodes[error.code ?? ''] ?? ['BAD_REQUEST', 'The request is not valid HTTP/1.1.']
  this.log.debug({ code: error.code }, 'malformed request')
  if (socket.writable) answerAndClose(socket, rawProblemResponse(code, detail))
  else socket.destroy()
}

/** How much of an unread body is read and dropped after an early error answer before the socket is closed. */
const BODY_DRAIN_LIMIT = 16 * 1024 * 1024

/**
 * After an error answered before the request body was read (413, 415), the body is read and
 * dropped up to BODY_DRAIN_LIMIT, so the client reads the answer instead of a reset, and the
 * connection stays usable. Fastify would close it at once; past the limit it is closed.
 */
function drainUnreadBody (request: FastifyRequest, reply: FastifyReply): void {
  const raw = request.raw
  if (raw.complete || raw.destroyed) return
  reply.removeHeader('connection')
  let drained = 0
  raw.on('data', (chunk: Buffer) => {
    drained += chunk.length
    if (drained > BODY_DRAIN_LIMIT) raw.socket.destroy()
  })
  raw.resume()
}

/**
 * Every non-2xx response leaves here as RFC 9457 problem+json: errors thrown by handlers and
 * hooks, Fastify's own (validation, body parsing), unknown routes and database outages.
 */
async function problemsPlugin (app: FastifyInstance): Promise<void> {
  app.setErrorHandler((error: FastifyError | ProblemError, request, reply) => {
    const { code, extras } = classifyError(error)
    const status = statusOf(code)
    if (status >= 500) {
      request.log.error({ err: error }, code === 'INTERNAL' ? 'unhandled error' : 'service unavailable')
    } else {
      request.log.debug({ code, detail: extras.detail }, 'request rejected')
    }
    drainUnreadBody(request, reply)
    return sendProblem(request, reply, code, extras)
  })

  // CONNECT is for proxies; without a listener Node drops the connection without an answer.
  app.server.on('connect', (_request, socket: Duplex) => {
    answerAndClose(socket, rawProblemResponse('NOT_IMPLEMENTED', 'CONNECT is not supported: this is an origin server, not a proxy.'))
  })

  // A path that exists under other methods is a 405 with `Allow` (RFC 9110 §15.5.6), not a 404:
  // the routes are mirrored into a router of their own, asked only when no route matched.
  const paths = FindMyWay({ ignoreTrailingSlash: false, maxParamLength: MAX_PARAM_LENGTH })
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/v1/') || route.url.startsWith('/health/') || route.url.startsWith('/.well-known/')) {
      paths.on([route.method].flat().map((method) => method.toUpperCase() as HTTPMethod), route.url, () => {})
    }
  })
  const allowedMethods = (path: string) => knownMethods.filter((method) => {
    const found = paths.find(method, path)
    return found !== null && !hasEmptyParameter(found.params)
  })
  app.setNotFoundHandler((request, reply) => {
    const allowed = allowedMethods(pathOf(request.url))
    if (allowed.length > 0) {
      return sendProblem(request, reply, 'METHOD_NOT_ALLOWED', { detail: `${request.method} is not allowed here: use ${allowed.join(', ')}.`, headers: { allow: allowed.join(', ') } })
    }
    const { code, extras } = noRoute(request.method, request.url)
    return sendProblem(request, reply, code, extras)
  })

  // What any operation can answer, whatever it reads, is declared on each: 400 for a query that is
  // not valid percent-encoding or holds a NUL (src/app.ts), and, on a method that may carry a body,
  // 413 and 415. Registered before the plugins that add headers to every response of a route.
  app.addHook('onRoute', (route) => {
    const response = route.schema?.response as Record<string, unknown> | undefined
    if (response === undefined || route.schema?.hide === true) return
    const bodied = [route.method].flat().some((method) => methodsWithBodies.has(method))
    const missing = [400, ...(bodied ? [413, 415] : [])].filter((status) => response[status] === undefined)
    if (missing.length > 0) route.schema = { ...route.schema, response: { ...response, ...problemResponses(...missing) } }
  })
}

const methodsWithBodies = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
const knownMethods: HTTPMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']

export default fp(problemsPlugin, { name: 'problems' })
