import type { Server } from 'node:http'
import { Server as NetServer, type Socket } from 'node:net'

/**
 * A keep-alive connection that has sent nothing for this long while the server drains is closed.
 * A client in the middle of a stream of requests sends its next one well within it, and gets an
 * answer (with `Connection: close`) instead of a reset.
 */
export const IDLE_CLOSE_AFTER_MS = 1000
const CHECK_EVERY_MS = 50

export interface DrainResult {
  /** Connections closed by the server after sitting idle. */
  idleClosed: number
  /** Connections still open at the deadline. */
  remaining: number
}

export interface ConnectionDrain {
  /**
   * Stops accepting connections. Closing the listener resets the connections the kernel has
   * accepted and Node has not yet, so it is done right after an I/O poll, when that backlog is
   * shortest; answers should say `Connection: close` only from then on, or a client that reconnects
   * at once could land in it.
   */
  stopListening: () => Promise<void>
  /**
   * Waits until every open connection has closed, or `timeoutMs` has passed. A request already read
   * is answered; busy connections close after their answer (which carries `Connection: close`),
   * idle ones once idle for IDLE_CLOSE_AFTER_MS.
   */
  drain: (timeoutMs: number) => Promise<DrainResult>
}

/**
 * Keeps the server's open connections, to close them without racing a request arriving on one.
 * Node's `server.close()` destroys idle keep-alive connections at once: a client that had just
 * sent its next request on one sees a reset and cannot tell whether a POST was applied.
 */
export function trackConnections (server: Server): ConnectionDrain {
  const sockets = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  return {
    stopListening: async () => {
      await new Promise((resolve) => setImmediate(resolve))
      // net.Server's close only stops listening; http.Server's would also drop idle connections.
      NetServer.prototype.close.call(server)
    },
    drain: async (timeoutMs) => {
      const seen = new Map<Socket, { bytesRead: number, idleSince: number }>()
      const deadline = Date.now() + timeoutMs
      let idleClosed = 0
      while (sockets.size > 0 && Date.now() < deadline) {
        const now = Date.now()
        for (const socket of sockets) {
          // Node sets `_httpMessage` from a request's headers until its answer is written; bytes read
          // since the last look mean a request is arriving.
          const busy = ((socket as Socket & { _httpMessage?: unknown })._httpMessage ?? null) !== null
          const last = seen.get(socket)
          if (busy || last === undefined || last.bytesRead !== socket.bytesRead) {
            seen.set(socket, { bytesRead: socket.bytesRead, idleSince: now })
          } else if (now - last.idleSince >= IDLE_CLOSE_AFTER_MS) {
            socket.destroy()
            idleClosed += 1
          }
        }
        await new Promise((resolve) => setTimeout(resolve, CHECK_EVERY_MS))
      }
      return { idleClosed, remaining: sockets.size }
    },
  }
}
