import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { type ErrorCode, problemType, ProblemError, type ProblemExtras, statusOf, titleOf } from '../../errors.js'
import type { Problem } from '../../schemas/common.js'
import { isDatabaseUnavailable } from '../../db/errors.js'

type Issue = NonNullable<ProblemExtras['errors']>[number]

const validationParts: Record<string, string> = { body: 'body', querystring: 'query', params: 'path', headers: 'header' }

/** Fastify's own errors, by code, mapped onto the catalogue. */
const fastifyCodes: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_BAD_URL: 'BAD_REQUEST',
  FST_ERR_NOT_FOUND: 'NOT_FOUND',
  FST_ERR_RATE_LIMIT: 'RATE_LIMITED',
}

interface AjvIssue { instancePath: string, keyword: string, message?: string, params: Record<string, unknown> }

function toIssues (error: FastifyError): Issue[] {
  const part = validationParts[error.validationContext ?? 'body'] ?? 'body'
  return (error.validation as AjvIssue[] | undefined ?? []).map((e) => {
    if (e.keyword === 'required') {
      return { in: part, path: `${e.instancePath}/${String(e.params.missingProperty)}`, message: 'is required' }
    }
    if (e.keyword === 'additionalProperties') {
      return { in: part, path: `${e.instancePath}/${String(e.params.additionalProperty)}`, message: 'is not a known field' }
    }
    return { in: part, path: e.instancePath === '' ? '/' : e.instancePath, message: e.message ?? 'is invalid' }
  })
}

/** Decides which catalogue entry an error is, with the request-specific detail to show. */
function classify (error: FastifyError | ProblemError): { code: ErrorCode, extras: ProblemExtras } {
  if (error instanceof ProblemError) return { code: error.code, extras: error.extras }
  if (error.validation !== undefined) {
    const errors = toIssues(error)
    const detail = errors.slice(0, 3).map((e) => `${e.in}${e.path === '/' ? '' : e.path} ${e.message}`).join('; ')
    return { code: 'VALIDATION_FAILED', extras: { detail, errors } }
  }
  const mapped = error.code === undefined ? undefined : fastifyCodes[error.code]
  if (mapped !== undefined) {
    const detail = mapped === 'MALFORMED_JSON' ? 'The request body is not valid JSON.' : error.message
    return { code: mapped, extras: { detail } }
  }
  if (isDatabaseUnavailable(error)) {
    return { code: 'SERVICE_UNAVAILABLE', extras: { detail: 'The database is unavailable; try again shortly.', headers: { 'retry-after': '5' } } }
  }
  // Another plugin's client error (4xx with a message meant for the caller), e.g. a 408.
  const status = error.statusCode ?? 500
  if (status === 408) return { code: 'REQUEST_TIMEOUT', extras: {} }
  if (status >= 400 && status < 500) return { code: 'BAD_REQUEST', extras: { detail: error.message } }
  return { code: 'INTERNAL', extras: { detail: 'An unexpected error occurred. Quote the request_id when reporting it.' } }
}

export function sendProblem (request: FastifyRequest, reply: FastifyReply, code: ErrorCode, extras: ProblemExtras = {}): FastifyReply {
  const status = statusOf(code)
  const body: Problem = {
    type: problemType(code),
    title: titleOf(code),
    status,
    ...(extras.detail !== undefined ? { detail: extras.detail } : {}),
    instance: request.url.split('?', 1)[0] ?? '/',
    code,
    request_id: request.id,
    ...(extras.errors !== undefined ? { errors: extras.errors as Problem['errors'] } : {}),
    ...(extras.error !== undefined ? { error: extras.error } : {}),
  }
  if (extras.headers !== undefined) reply.headers(extras.headers)
  return reply.code(status).type('application/problem+json').send(body)
}

/**
 * Every non-2xx response leaves here as RFC 9457 problem+json: errors thrown by handlers and
 * hooks, Fastify's own (validation, body parsing), unknown routes and database outages.
 */
async function problemsPlugin (app: FastifyInstance): Promise<void> {
  app.setErrorHandler((error: FastifyError | ProblemError, request, reply) => {
    const { code, extras } = classify(error)
    const status = statusOf(code)
    if (status >= 500) {
      request.log.error({ err: error }, code === 'INTERNAL' ? 'unhandled error' : 'service unavailable')
    } else {
      request.log.debug({ code, detail: extras.detail }, 'request rejected')
    }
    return sendProblem(request, reply, code, extras)
  })

  app.setNotFoundHandler((request, reply) =>
    sendProblem(request, reply, 'NOT_FOUND', { detail: `No route for ${request.method} ${request.url.split('?', 1)[0] ?? '/'}.` }))
}

export default fp(problemsPlugin, { name: 'problems' })
