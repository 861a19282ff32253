/**
 * `npm run bench:tokens`: one access token's signature check, uncached, with HS256 (JWT_SECRET) and
 * with EdDSA (an Ed25519 key in JWT_SIGNING_KEYS), through fast-jwt, the verifier `@fastify/jwt`
 * uses. The service remembers a verified token until it expires (`npm run bench -- --signing eddsa`
 * measures that path); this is what the first request with a new token pays. Prints the median of
 * five rounds of microseconds per verification.
 */
import { generateKeyPairSync } from 'node:crypto'
import { createSigner, createVerifier } from 'fast-jwt'
import { benchJwtSecret as secret } from './bench-target.js'

const claims = { sub: '00000000-0000-4000-8000-000000000001', iss: 'tasks-api', aud: 'tasks-api', scope: 'tasks:read tasks:write' }
const { privateKey, publicKey } = generateKeyPairSync('ed25519')
const algorithms = {
  HS256: { sign: createSigner({ key: secret, algorithm: 'HS256', expiresIn: 900_000 }), verify: createVerifier({ key: secret, algorithms: ['HS256'], cache: false }) },
  EdDSA: {
    sign: createSigner({ key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), algorithm: 'EdDSA', expiresIn: 900_000 }),
    verify: createVerifier({ key: publicKey.export({ type: 'spki', format: 'pem' }).toString(), algorithms: ['EdDSA'], cache: false }),
  },
}
const ROUND_NS = 400_000_000n

for (const [name, { sign, verify }] of Object.entries(algorithms)) {
  const tokens = Array.from({ length: 1000 }, (_, i) => sign({ ...claims, jti: String(i) }))
  for (const token of tokens) verify(token)
  const rounds: number[] = []
  for (let round = 0; round < 5; round++) {
    const start = process.hrtime.bigint()
    let n = 0
    while (process.hrtime.bigint() - start < ROUND_NS) verify(tokens[n++ % tokens.length]!)
    rounds.push(Number(process.hrtime.bigint() - start) / 1000 / n)
  }
  rounds.sort((a, b) => a - b)
  console.log(`${name}: ${rounds[2]!.toFixed(1)} µs per verification (median of 5 rounds)`)
}
