import { createPrivateKey, createPublicKey, type JsonWebKey } from 'node:crypto'

/** An asymmetric key that signs (the first of JWT_SIGNING_KEYS) or verifies access tokens. */
export interface SigningKey {
  kid: string
  /** Fixed by the key's type: a token naming another algorithm is refused. */
  alg: 'EdDSA' | 'ES256'
  privatePem: string
  publicPem: string
  /** What GET /.well-known/jwks.json publishes: the public part only. */
  publicJwk: JsonWebKey & { kid: string, alg: string, use: 'sig' }
}

/**
 * JWT_SIGNING_KEYS, a JWK set (`{"keys":[…]}`) of Ed25519 (`OKP`) or P-256 (`EC`) private keys, each
 * with a distinct `kid`. Throws an Error saying what is wrong, never repeating key material.
 */
export function parseSigningKeys (text: string): SigningKey[] {
  let set: unknown
  try {
    set = JSON.parse(text)
  } catch {
    throw new Error('must be a JSON Web Key set: {"keys":[…]}')
  }
  const keys = (set as { keys?: unknown } | null)?.keys
  if (!Array.isArray(keys) || keys.length === 0) throw new Error('must be a JSON Web Key set with at least one key: {"keys":[…]}')
  const seen = new Set<string>()
  return keys.map((jwk: unknown, i) => {
    const { kid, kty, crv, d } = (jwk ?? {}) as Record<string, unknown>
    if (typeof kid !== 'string' || kid === '') throw new Error(`key ${i + 1} has no "kid"`)
    if (seen.has(kid)) throw new Error(`"kid" ${kid} appears twice`)
    seen.add(kid)
    const alg = kty === 'OKP' && crv === 'Ed25519' ? 'EdDSA' : kty === 'EC' && crv === 'P-256' ? 'ES256' : undefined
    if (alg === undefined) throw new Error(`key ${kid} is neither Ed25519 (kty OKP) nor P-256 (kty EC)`)
    if (typeof d !== 'string') throw new Error(`key ${kid} is not a private key (no "d")`)
    let privateKey
    try {
      privateKey = createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' })
    } catch {
      throw new Error(`key ${kid} is not a valid ${alg === 'EdDSA' ? 'Ed25519' : 'P-256'} private key`)
    }
    const publicKey = createPublicKey(privateKey)
    return {
      kid,
      alg,
      privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      publicJwk: { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' as const },
    }
  })
}
