import type { Problem } from './generated/openapi.js'

/** A non-2xx answer, as the RFC 9457 problem the API sent (or one made up when the body was not one). */
export class ProblemError extends Error {
  readonly problem: Problem
  readonly response: Response

  constructor (problem: Problem, response: Response) {
    super(`${problem.status} ${problem.code}: ${problem.detail ?? problem.title}`)
    this.name = 'ProblemError'
    this.problem = problem
    this.response = response
  }

  get status (): number { return this.problem.status }
  /** The stable, machine-readable name from the API's error catalogue. */
  get code (): string { return this.problem.code }
}

function isProblem (value: unknown): value is Problem {
  return typeof value === 'object' && value !== null &&
    typeof (value as Problem).status === 'number' && typeof (value as Problem).code === 'string'
}

/** Turns whatever an error response held into a Problem; a proxy's HTML page or an empty 304 included. */
export function toProblem (error: unknown, response: Response): Problem {
  if (isProblem(error)) return error
  return {
    type: 'about:blank',
    title: response.statusText || `HTTP ${response.status}`,
    status: response.status,
    code: `HTTP_${response.status}`,
    instance: new URL(response.url || 'http://invalid/').pathname,
    request_id: response.headers.get('x-request-id') ?? '',
    ...(typeof error === 'string' && error !== '' ? { detail: error.slice(0, 500) } : {}),
  }
}

type Data<R> = R extends { data?: infer D } ? Exclude<D, undefined> : never

/**
 * Resolves an openapi-fetch call to its data, or throws a ProblemError:
 * `const task = await unwrap(api.POST('/v1/tasks', { body }))`.
 */
export async function unwrap<R extends { data?: unknown, error?: unknown, response: Response }> (
  pending: Promise<R>,
): Promise<[Data<R>] extends [never] ? undefined : Data<R>> {
  const { data, error, response } = await pending
  if (!response.ok) throw new ProblemError(toProblem(error, response), response)
  return data as [Data<R>] extends [never] ? undefined : Data<R>
}
