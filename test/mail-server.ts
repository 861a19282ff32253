/**
 * A real SMTP server for tests (the `smtp-server` package) on localhost: it accepts every message,
 * parses it with `mailparser`, and keeps it for the test to read.
 */
import { SMTPServer } from 'smtp-server'
import { simpleParser } from 'mailparser'
import { setTimeout as sleep } from 'node:timers/promises'
import type { AddressInfo } from 'node:net'

export interface ReceivedMail {
  from: string
  to: string[]
  subject: string
  text: string
  html: string
}

export interface MailServer {
  /** For SMTP_URL. */
  url: string
  received: ReceivedMail[]
  /** The mails to `to`, once there are at least `count` of them. */
  waitFor: (to: string, count?: number, timeoutMs?: number) => Promise<ReceivedMail[]>
  close: () => Promise<void>
}

export async function startMailServer (): Promise<MailServer> {
  const received: ReceivedMail[] = []
  const server = new SMTPServer({
    authOptional: true,
    // Plain SMTP on localhost: no certificate to trust.
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData (stream, session, callback) {
      simpleParser(stream).then((mail) => {
        received.push({
          from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((r) => r.address),
          subject: mail.subject ?? '',
          text: mail.text ?? '',
          html: typeof mail.html === 'string' ? mail.html : '',
        })
        callback()
      }, callback)
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.server.address() as AddressInfo
  const mailsTo = (to: string) => received.filter((m) => m.to.includes(to))
  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    async waitFor (to, count = 1, timeoutMs = 10_000) {
      for (const deadline = Date.now() + timeoutMs; mailsTo(to).length < count;) {
        if (Date.now() > deadline) throw new Error(`${mailsTo(to).length} of ${count} mails to ${to} arrived within ${timeoutMs} ms`)
        await sleep(10)
      }
      return mailsTo(to)
    },
    close: async () => { await new Promise<void>((resolve) => server.close(() => resolve())) },
  }
}

/** The `token` parameter of the first link to /app/<page> in a mail's text. */
export function tokenFrom (mail: ReceivedMail, page: 'verify-email' | 'reset-password'): string {
  const match = new RegExp(`/app/${page}\\?token=([A-Za-z0-9_%-]+)`).exec(mail.text)
  if (match === null) throw new Error(`no /app/${page} link in: ${mail.text}`)
  return decodeURIComponent(match[1]!)
}
