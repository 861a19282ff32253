import { join } from 'node:path'
import nunjucks, { type ConfigureOptions, type Environment } from 'nunjucks'
import { projectRoot } from '../lib/project-root.js'

export const templatesDir = join(projectRoot, 'templates')
export const publicDir = join(projectRoot, 'public')

// Times are shown and entered in UTC: the server does not know the reader's zone, and a page that
// guessed it would disagree with the API's timestamps.
const readable = new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit' })

/** `2026-12-01T17:00:00.000000Z` → `Tue 1 Dec 2026, 17:00 UTC`. */
export function formatDate (iso: unknown): string {
  if (typeof iso !== 'string' || iso === '') return ''
  const date = new Date(iso)
  return Number.isNaN(date.getTime()) ? '' : `${readable.format(date)} UTC`
}

/** An RFC 3339 instant as the value of an `<input type="datetime-local">` (UTC, to the minute). */
export function formatDateTimeInput (iso: unknown): string {
  if (typeof iso !== 'string' || iso === '') return ''
  const date = new Date(iso)
  return Number.isNaN(date.getTime()) ? iso : date.toISOString().slice(0, 16)
}

/** Filters for the templates (`{{ task.due_at | date }}`). */
function configureTemplates (env: Environment): void {
  env.addFilter('date', formatDate)
  env.addFilter('datetimeInput', formatDateTimeInput)
}

/**
 * nunjucks as @fastify/view uses it, with one Environment, its filters added, per process and set
 * of options: an app built again in the same process (the tests build hundreds) renders from the
 * templates the first one compiled, instead of compiling each again.
 */
const environments = new Map<string, Environment>()
export const templateEngine = {
  configure (path: string, options: ConfigureOptions): Environment {
    const key = JSON.stringify([path, options])
    let env = environments.get(key)
    if (env === undefined) {
      env = nunjucks.configure(path, options)
      configureTemplates(env)
      environments.set(key, env)
    }
    return env
  },
}
