import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto'

/**
 * Opaque, tamper-evident cursors: `base64url(JSON payload).base64url(MAC)`. The MAC also covers a
 * context string that the cursor does not carry (who asks, with which sort and filters), so a cursor
 * replayed under another context fails verification like a forged one.
 */
export function createCursorCodec (secret: string, purpose: string) {
  // A key of its own, so cursors can never be confused with tokens signed by the same secret.
  const key = Buffer.from(hkdfSync('sha256', secret, '', purpose, 32))
  const sign = (context: string, payload: string) =>
    createHmac('sha256', key).update(context).update('\n').update(payload).digest().subarray(0, 16).toString('base64url')

  return {
    encode (context: string, value: unknown): string {
      const payload = Buffer.from(JSON.stringify(value)).toString('base64url')
      return `${payload}.${sign(context, payload)}`
    },

    /** The value inside `cursor`, or undefined when it is malformed, altered or from another context. */
    decode (context: string, cursor: string): unknown {
      const dot = cursor.indexOf('.')
      if (dot < 0) return undefined
      const payload = cursor.slice(0, dot)
      // Compared as text: base64url decoding would ignore changes to a final character's spare bits.
      const given = Buffer.from(cursor.slice(dot + 1))
      const expected = Buffer.from(sign(context, payload))
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined
      // Verified, so the payload is JSON this codec wrote.
      return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
    },
  }
}
