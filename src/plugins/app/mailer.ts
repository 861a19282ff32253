import { join } from 'node:path'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import nodemailer from 'nodemailer'
import nunjucks from 'nunjucks'
import type { Config } from '../../config.js'
import { problem } from '../../errors.js'
import { projectRoot } from '../../lib/project-root.js'
import { inSpan, SpanKind } from '../../lib/tracing.js'

/** Every message the service sends: its subject, and templates/mail/<name>.txt.njk and .html.njk. */
const messages = {
  'verify-email': 'Confirm your email address',
  'reset-password': 'Reset your password',
} as const
export type MailName = keyof typeof messages

export interface Mail {
  to: string
  name: MailName
  /** What the templates show; `link` is the one action the message is for. */
  data: { username: string, link: string, token: string, [key: string]: unknown }
}

declare module 'fastify' {
  interface FastifyInstance {
    mailer: {
      /** `smtp`: sent over SMTP_URL; `log`: written to the log (development); `off`: cannot be sent. */
      mode: 'smtp' | 'log' | 'off'
      /** Refuses (503 MAIL_UNAVAILABLE) when mail cannot be sent, before any work is done. */
      assertAvailable: () => void
      /**
       * Sends after the response, so that no answer waits for (or reveals by its timing) the SMTP
       * server; a failure is logged. Sends still under way are finished before the app closes.
       */
      sendLater: (request: FastifyRequest, mail: Mail) => void
      /** The base of links in mail: PUBLIC_URL, else the request's own origin. */
      linkBase: (request: FastifyRequest) => string
    }
  }
}

async function mailerPlugin (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  const { config } = opts
  const mode = config.SMTP_URL !== undefined ? 'smtp' : config.NODE_ENV === 'production' ? 'off' : 'log'
  const transport = config.SMTP_URL === undefined
    ? undefined
    : nodemailer.createTransport({ url: config.SMTP_URL, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 20_000 })
  const loader = new nunjucks.FileSystemLoader(join(projectRoot, 'templates', 'mail'), { noCache: config.NODE_ENV !== 'production' })
  const text = new nunjucks.Environment(loader, { autoescape: false, trimBlocks: true, lstripBlocks: true, throwOnUndefined: true })
  const html = new nunjucks.Environment(loader, { autoescape: true, trimBlocks: true, lstripBlocks: true, throwOnUndefined: true })
  const pending = new Set<Promise<void>>()
  const smtpHost = config.SMTP_URL === undefined ? '' : new URL(config.SMTP_URL).hostname

  if (mode === 'off') app.log.warn('mail: SMTP_URL is unset, so email verification and password reset answer 503 MAIL_UNAVAILABLE')
  else if (mode === 'log') app.log.info('mail: SMTP_URL is unset, so messages are written to this log instead of being sent')
  if (config.NODE_ENV === 'production' && config.PUBLIC_URL === undefined) {
    app.log.warn('mail: PUBLIC_URL is unset, so links in mail are built from each request\'s Host header')
  }

  async function deliver (request: FastifyRequest, mail: Mail): Promise<void> {
    const subject = messages[mail.name]
    const context = { ...mail.data, subject }
    const body = text.render(`${mail.name}.txt.njk`, context)
    if (transport === undefined) {
      request.log.info({ mail: { to: mail.to, subject, link: mail.data.link, text: body } }, `mail not sent (no SMTP_URL): ${subject}`)
      return
    }
    // In the trace of the request that caused it; the address stays out of the span, as out of metrics.
    await inSpan('mail send', { kind: SpanKind.CLIENT, attributes: { 'mail.message': mail.name, 'server.address': smtpHost } }, async () => {
      await transport.sendMail({ from: config.MAIL_FROM, to: mail.to, subject, text: body, html: html.render(`${mail.name}.html.njk`, context) })
    })
    request.log.info({ mail: { to: mail.to, subject } }, 'mail sent')
  }

  app.decorate('mailer', {
    mode,
    assertAvailable () {
      if (mode === 'off') throw problem('MAIL_UNAVAILABLE', 'This server cannot send mail (no SMTP_URL is configured); ask its operator.', { headers: { 'retry-after': '3600' } })
    },
    sendLater (request: FastifyRequest, mail: Mail) {
      // Even the rendering waits until the answer has gone, so no answer does more work for a mail.
      const sending: Promise<void> = new Promise((resolve) => setImmediate(resolve))
        .then(async () => { await deliver(request, mail) })
        .catch((err: unknown) => { request.log.error({ err, mail: { to: mail.to, name: mail.name } }, 'mail could not be sent') })
        .finally(() => pending.delete(sending))
      pending.add(sending)
    },
    linkBase (request: FastifyRequest) {
      return config.PUBLIC_URL ?? `${request.protocol}://${request.host}`
    },
  })

  app.addHook('preClose', async () => {
    await Promise.all(pending)
    transport?.close()
  })
}

export default fp(mailerPlugin, { name: 'mailer' })
