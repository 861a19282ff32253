/**
 * A webhook receiver for tests: a real HTTP server on localhost that keeps every request it gets
 * (headers, raw body, arrival time) and answers as the test says.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'

export interface Received {
  headers: IncomingHttpHeaders
  body: string
  at: number
}

export interface Answer {
  status: number
  headers?: Record<string, string>
  body?: string
  /** Waits this long before answering. */
  delayMs?: number
}

export interface Receiver {
  url: string
  port: number
  received: Received[]
  /** Decides each answer (default: 200); `n` counts from 1. */
  answer: (request: Received, n: number) => Answer
  /** The most requests with the same `webhook-id` it was handling at once (until answered, or the sender hung up). */
  maxConcurrentPerId: () => number
  waitFor: (count: number, timeoutMs?: number) => Promise<Received[]>
  close: () => Promise<void>
  server: Server
}

export async function startReceiver (port = 0): Promise<Receiver> {
  const active = new Map<string, number>()
  let maxConcurrent = 0
  const receiver: Receiver = {
    url: '',
    port: 0,
    received: [],
    answer: () => ({ status: 200, body: 'ok' }),
    maxConcurrentPerId: () => maxConcurrent,
    waitFor: async (count, timeoutMs = 15_000) => {
      const deadline = Date.now() + timeoutMs
      while (receiver.received.length < count) {
        if (Date.now() > deadline) throw new Error(`${receiver.received.length} of ${count} deliveries arrived within ${timeoutMs} ms`)
        await sleep(10)
      }
      return receiver.received.slice(0, count)
    },
    close: async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
    server: undefined as unknown as Server,
  }
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const request = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() }
      receiver.received.push(request)
      const id = String(req.headers['webhook-id'])
      active.set(id, (active.get(id) ?? 0) + 1)
      maxConcurrent = Math.max(maxConcurrent, active.get(id)!)
      const answer = receiver.answer(request, receiver.received.length)
      // Handled until answered, or until the sender hangs up.
      let handled = true
      const release = () => {
        if (handled) active.set(id, active.get(id)! - 1)
        handled = false
      }
      res.on('close', release)
      const respond = () => {
        release()
        if (res.destroyed) return
        res.writeHead(answer.status, answer.headers).end(answer.body ?? '')
      }
      if (answer.delayMs === undefined) respond()
      else setTimeout(respond, answer.delayMs)
    })
  })
  receiver.server = server
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('not listening')
  receiver.port = address.port
  receiver.url = `http://127.0.0.1:${address.port}/hook`
  return receiver
}
