import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import jwt from '@fastify/jwt'
import { createDecoder, createVerifier } from 'fast-jwt'
import type { Config } from '../../config.js'
import { parseSigningKeys, type SigningKey } from '../../lib/signing-keys.js'

declare module 'fastify' {
  interface FastifyInstance {
    accessTokens: {
      /** The claims of a valid access token; throws for any other token. */
      verify: (token: string) => unknown
      /** The public keys that verify access tokens, or undefined when they are HS256 (JWT_SECRET). */
      publicKeys: SigningKey['publicJwk'][] | undefined
    }
  }
}

/**
 * Access tokens: HS256 with JWT_SECRET by default, or EdDSA/ES256 with the keys of JWT_SIGNING_KEYS.
 * Issuer, audience, expiry, subject, issue time and id are all required, and only the configured
 * algorithm is accepted. With only a secret, @fastify/jwt would also accept other HMAC algorithms,
 * any audience and tokens without `exp`. A numeric `expiresIn` is in seconds here (@fastify/jwt
 * converts it for fast-jwt, which counts milliseconds).
 * @see https://github.com/fastify/fastify-jwt
 */
async function jwtPlugin (app: FastifyInstance, opts: { config: Config, secret: string }): Promise<void> {
  const { config } = opts
  const claims = {
    allowedIss: config.JWT_ISSUER,
    allowedAud: config.JWT_AUDIENCE,
    requiredClaims: ['exp', 'iat', 'sub', 'jti', 'iss', 'aud'],
  }
  const keys = config.JWT_SIGNING_KEYS === undefined ? undefined : parseSigningKeys(config.JWT_SIGNING_KEYS)
  const signer = keys?.[0]
  await app.register(jwt, {
    secret: signer === undefined ? opts.secret : { private: signer.privatePem, public: signer.publicPem },
    sign: { algorithm: signer?.alg ?? 'HS256', ...(signer === undefined ? {} : { kid: signer.kid }), iss: config.JWT_ISSUER, aud: config.JWT_AUDIENCE, expiresIn: config.ACCESS_TOKEN_TTL },
    verify: { algorithms: [signer?.alg ?? 'HS256'], ...claims },
  })
  if (keys === undefined) {
    app.decorate('accessTokens', { verify: (token: string) => app.jwt.verify(token), publicKeys: undefined })
    return
  }
  // The key is the one the token's `kid` names, and only with that key's own algorithm: an unknown
  // `kid`, `none`, or HS256 keyed with a public key are all refused.
  const verifiers = new Map(keys.map((key) => [key.kid, createVerifier({ key: key.publicPem, algorithms: [key.alg], ...claims })]))
  const header = createDecoder({ complete: true })
  app.decorate('accessTokens', {
    verify (token: string) {
      const { kid } = (header(token) as { header: { kid?: unknown } }).header
      const verify = typeof kid === 'string' ? verifiers.get(kid) : undefined
      if (verify === undefined) throw new Error('the token names no key this service has')
      return verify(token)
    },
    publicKeys: keys.map((key) => key.publicJwk),
  })
}

export default fp(jwtPlugin, { name: 'jwt' })
