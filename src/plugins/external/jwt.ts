import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import jwt from '@fastify/jwt'
import type { Config } from '../../config.js'

/**
 * Access tokens: HS256 only, and issuer, audience, expiry, subject, issue time and id are all
 * required. With only a secret, @fastify/jwt would also accept other HMAC algorithms, any
 * audience and tokens without `exp`. A numeric `expiresIn` is in seconds here (@fastify/jwt converts
 * it for fast-jwt, which counts milliseconds).
 * @see https://github.com/fastify/fastify-jwt
 */
async function jwtPlugin (app: FastifyInstance, opts: { config: Config, secret: string }): Promise<void> {
  const { config } = opts
  await app.register(jwt, {
    secret: opts.secret,
    sign: { algorithm: 'HS256', iss: config.JWT_ISSUER, aud: config.JWT_AUDIENCE, expiresIn: config.ACCESS_TOKEN_TTL },
    verify: {
      algorithms: ['HS256'],
      allowedIss: config.JWT_ISSUER,
      allowedAud: config.JWT_AUDIENCE,
      requiredClaims: ['exp', 'iat', 'sub', 'jti', 'iss', 'aud'],
    },
  })
}

export default fp(jwtPlugin, { name: 'jwt' })
