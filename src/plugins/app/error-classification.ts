import type { FastifyError } from 'fastify'
import { type ErrorCode, ProblemError, type ProblemExtras } from '../../errors.js'
import { isDatabaseUnavailable, isTransientConflict } from '../../db/errors.js'

/**
 * What an error is, as a catalogue entry with the request-specific detail to show: one decision
 * for the API (rendered as problem+json by src/plugins/app/problems.ts) and the pages (rendered as
 * HTML by src/web/plugin.ts).
 */
interface Classification {
  code: ErrorCode
  extras: ProblemExtras
}

/** What a 500 says: the details go to the log only. */
export const UNEXPECTED_DETAIL = 'An unexpected error occurred. Quote the request_id when reporting it.'

type Issue = NonNullable<ProblemExtras['errors']>[number]

const validationParts: Record<string, string> = { body: 'body', querystring: 'query', params: 'path', headers: 'header' }

/** Errors of Fastify and its plugins, by code, mapped onto the catalogue; with a detail of our own where theirs is not for the caller. */
const errorCodes: Record<string, [ErrorCode, string?]> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ['UNSUPPORTED_MEDIA_TYPE'],
  FST_ERR_CTP_BODY_TOO_LARGE: ['PAYLOAD_TOO_LARGE'],
  FST_ERR_CTP_INVALID_JSON_BODY: ['MALFORMED_JSON', 'The request body is not valid JSON.'],
  FST_ERR_CTP_EMPTY_JSON_BODY: ['MALFORMED_JSON', 'The request body is not valid JSON.'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ['BAD_REQUEST'],
  FST_ERR_NOT_FOUND: ['NOT_FOUND'],
  FST_ERR_RATE_LIMIT: ['RATE_LIMITED'],
  // @fastify/csrf-protection, on the pages' forms only.
  FST_CSRF_INVALID_TOKEN: ['FORBIDDEN', 'This form has expired or was not sent from this site. Go back, reload the page and try again.'],
  FST_CSRF_MISSING_SECRET: ['FORBIDDEN', 'This form has expired or was not sent from this site. Go back, reload the page and try again.'],
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
    return { in: part, path: e.instancePath, message: e.message ?? 'is invalid' }
  })
}

/** Decides which catalogue entry an error is, with the request-specific detail to show. */
export function classifyError (error: FastifyError | ProblemError): Classification {
  if (error instanceof ProblemError) return { code: error.code, extras: error.extras }
  if (error.validation !== undefined) {
    const errors = toIssues(error)
    const detail = errors.slice(0, 3).map((e) => `${e.in}${e.path} ${e.message}`).join('; ')
    return { code: 'VALIDATION_FAILED', extras: { detail, errors } }
  }
  const mapped = error.code === undefined ? undefined : errorCodes[error.code]
  if (mapped !== undefined) return { code: mapped[0], extras: { detail: mapped[1] ?? error.message } }
  if (isDatabaseUnavailable(error)) {
    return { code: 'SERVICE_UNAVAILABLE', extras: { detail: 'The database is unavailable; try again shortly.', headers: { 'retry-after': '5' } } }
  }
  if (isTransientConflict(error)) {
    return { code: 'WRITE_CONFLICT', extras: { detail: 'Another request changed the same data at the same time; retry.', headers: { 'retry-after': '1' } } }
  }
  // Another plugin's client error (4xx with a message meant for the caller), e.g. a 408.
  const status = error.statusCode ?? 500
  if (status === 408) return { code: 'REQUEST_TIMEOUT', extras: {} }
  if (status >= 400 && status < 500) return { code: 'BAD_REQUEST', extras: { detail: error.message } }
  return { code: 'INTERNAL', extras: { detail: UNEXPECTED_DETAIL } }
}
