import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

/**
 * Secrets the service must read back (webhook signing and TOTP secrets), stored encrypted with AES-256-GCM
 * under a purpose key (src/lib/keys.ts) as `v1.<iv>.<ciphertext and tag>`, base64url. The first key
 * encrypts; every key is tried to decrypt, so a rotation of the root secret keeps old values readable.
 */
export function sealSecret (plain: string, keys: Buffer[]): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', keys[0]!, iv)
  const sealed = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final(), cipher.getAuthTag()])
  return `v1.${iv.toString('base64url')}.${sealed.toString('base64url')}`
}

/**
 * The secret, and whether it was sealed under an earlier key: such a value is best sealed again
 * (sealSecret) when it is read, so that the earlier root can be dropped once no value needs it.
 */
export function openSealed (stored: string, keys: Buffer[]): { plain: string, stale: boolean } {
  const [version, iv, sealed] = stored.split('.')
  if (version !== 'v1' || iv === undefined || sealed === undefined) throw new Error('not a sealed secret')
  const bytes = Buffer.from(sealed, 'base64url')
  for (const [index, key] of keys.entries()) {
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'))
      decipher.setAuthTag(bytes.subarray(bytes.length - 16))
      const plain = Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - 16)), decipher.final()]).toString('utf8')
      return { plain, stale: index > 0 }
    } catch {
      // Sealed under another key: try the next.
    }
  }
  throw new Error('the secret was sealed under a key this service no longer has (a root dropped from SECRET_KEY_PREVIOUS too soon)')
}
