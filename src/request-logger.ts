import type { FastifyBaseLogger, FastifyServerOptions } from 'fastify'
import type { Bindings, ChildLoggerOptions, Level, LevelWithSilentOrString, LogFn, Logger } from 'pino'

/**
 * A request's logger that becomes a pino child (bound to the request id) when it first writes a
 * line at an enabled level. Most requests write nothing of their own (the access line goes through
 * the root logger), and building a child for every request, its bindings serialized through the
 * redaction rules, was several percent of the CPU of a small request.
 */
class RequestLogger {
  #child: Logger | undefined
  readonly #parent: Logger
  readonly #bindings: Bindings

  constructor (parent: Logger, bindings: Bindings) {
    this.#parent = parent
    this.#bindings = bindings
  }

  get #logger (): Logger {
    this.#child ??= this.#parent.child(this.#bindings)
    return this.#child
  }

  get level (): LevelWithSilentOrString { return (this.#child ?? this.#parent).level }
  set level (level: LevelWithSilentOrString) { this.#logger.level = level }
  get msgPrefix (): string | undefined { return (this.#child ?? this.#parent).msgPrefix }

  isLevelEnabled (level: string): boolean { return (this.#child ?? this.#parent).isLevelEnabled(level) }
  child (bindings: Bindings, options?: ChildLoggerOptions): Logger { return this.#logger.child(bindings, options) }

  #write (level: Level, args: Parameters<LogFn>): void {
    if (this.isLevelEnabled(level)) (this.#logger[level] as (...a: unknown[]) => void)(...args)
  }

  fatal (...args: Parameters<LogFn>): void { this.#write('fatal', args) }
  error (...args: Parameters<LogFn>): void { this.#write('error', args) }
  warn (...args: Parameters<LogFn>): void { this.#write('warn', args) }
  info (...args: Parameters<LogFn>): void { this.#write('info', args) }
  debug (...args: Parameters<LogFn>): void { this.#write('debug', args) }
  trace (...args: Parameters<LogFn>): void { this.#write('trace', args) }
  silent (): void {}
}

/**
 * Fastify's `childLoggerFactory` for a pino logger: a lazy logger per request; a real child at once
 * where a route sets its own log level or serializers.
 */
export const requestLoggerFactory: NonNullable<FastifyServerOptions['childLoggerFactory']> = (logger, bindings, options) =>
  Object.keys(options).length > 0
    ? logger.child(bindings, options)
    : new RequestLogger(logger as unknown as Logger, bindings) as unknown as FastifyBaseLogger
