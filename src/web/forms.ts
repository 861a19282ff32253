import type { TSchema } from '@sinclair/typebox'
import { Ajv, type ErrorObject } from 'ajv'
import { type ErrorCode, problem, ProblemError } from '../errors.js'
import { addFormats } from '../lib/formats.js'

// Forms are checked against the API's own schemas, with the API's body settings (no coercion), so
// the pages can never accept what the API refuses or refuse what it accepts (and, like the API's
// validators, without checking those schemas against the meta-schema at start).
const ajv = new Ajv({ allErrors: true, strict: false, coerceTypes: false, removeAdditional: false, validateSchema: false })
addFormats(ajv)

/** Messages per field, keyed by the field's name in the schema. */
export type FieldErrors = Record<string, string>

/**
 * A checker for `schema` that answers a message per failing field (or none): `messages` says, in
 * words a person understands, what each field must be.
 */
export function formChecker (schema: TSchema, messages: Record<string, string>) {
  const validate = ajv.compile(schema)
  return (value: unknown): FieldErrors => {
    if (validate(value)) return {}
    const errors: FieldErrors = {}
    for (const issue of validate.errors as ErrorObject[]) {
      const field = issue.keyword === 'required' ? String(issue.params.missingProperty) : issue.instancePath.split('/')[1] ?? ''
      errors[field] ??= messages[field] ?? 'This value is not valid.'
    }
    return errors
  }
}

/** For some refusals of the catalogue, the form field they are about and what to tell the person. */
export type Refusals = Partial<Record<ErrorCode, [name: string, message: string]>>

/**
 * Runs `step` (a check that refuses by throwing); a refusal whose code `fields` names (a wrong
 * password, a wrong code) comes back as that field's message, for the form to show. Any other error
 * goes on to the error page.
 */
export async function refusedFields (step: () => Promise<unknown>, fields: Refusals): Promise<FieldErrors> {
  try {
    await step()
    return {}
  } catch (err) {
    const field = err instanceof ProblemError ? fields[err.code] : undefined
    if (field === undefined) throw err
    return { [field[0]]: field[1] }
  }
}

/** A submitted form, as @fastify/formbody parses it: a field sent twice arrives as an array. */
export type Form = Record<string, string | string[] | undefined>

/** The field's value, or '' when it is missing; a repeated single-value field is refused. */
export function field (form: unknown, name: string): string {
  const value = (form as Form | undefined)?.[name]
  if (value === undefined) return ''
  if (typeof value === 'string') return value
  throw problem('BAD_REQUEST', `The field ${name} was sent more than once.`)
}

/** Every value of a field that may repeat (checkboxes). */
export function fields (form: unknown, name: string): string[] {
  const value = (form as Form | undefined)?.[name]
  return value === undefined ? [] : typeof value === 'string' ? [value] : value
}

/**
 * `<input type="datetime-local">` gives `2026-12-01T17:00` without a zone; the pages use UTC. Empty
 * is null; anything else is passed through for the schema to refuse.
 */
export function instantFromInput (value: string): string | null {
  const trimmed = value.trim()
  if (trimmed === '') return null
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(trimmed)) return `${trimmed}:00Z`
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?$/.test(trimmed)) return `${trimmed}Z`
  return trimmed
}

/** `work, urgent ,work` → `['work', 'urgent']`: commas separate, blanks and repeats are dropped. */
export function tagsFromInput (value: string): string[] {
  return [...new Set(value.split(',').map((tag) => tag.trim()).filter((tag) => tag !== ''))]
}

/** Where to go after a form, from a `return_to` field: only a path of these pages, never elsewhere. */
export function localPath (value: string, fallback: string): string {
  return /^\/app(\/|$|\?)/.test(value) && !value.includes('\\') && !/[\r\n]/.test(value) ? value : fallback
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * An id from a page's path, in lower case. A malformed one is a resource that does not exist: the
 * page answers `code` (a 404) with `detail`, as for an id nobody has.
 */
export function idFromPath (value: string, code: ErrorCode, detail: string): string {
  if (!UUID.test(value)) throw problem(code, detail)
  return value.toLowerCase()
}
