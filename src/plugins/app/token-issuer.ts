import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import type { UserRow } from '../../db/schema.js'
import type { TokenPair } from '../../schemas/auth.js'
import { scopesOf } from '../../schemas/scopes.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** A new access token, with `refreshToken` or else a new refresh-token family (a login). */
    issueTokenPair: (user: UserRow, refreshToken?: string) => Promise<TokenPair>
  }
}

/**
 * Issues token pairs: a signed access token granting every scope of the user's role, with the
 * claims authentication checks (src/plugins/app/authenticate.ts), and a refresh token.
 */
async function tokenIssuerPlugin (app: FastifyInstance, opts: { config: Config }): Promise<void> {
  app.decorate('issueTokenPair', async (user: UserRow, refreshToken?: string): Promise<TokenPair> => {
    const scope = scopesOf(user.role).join(' ')
    const claims = { sub: user.id, jti: randomUUID(), role: user.role, scope, pwd_at: user.passwordChangedAt.getTime() }
    return {
      access_token: app.jwt.sign(claims),
      token_type: 'Bearer',
      expires_in: opts.config.ACCESS_TOKEN_TTL,
      refresh_token: refreshToken ?? await app.refreshTokensRepository.issue(user.id),
      scope,
    }
  })
}

export default fp(tokenIssuerPlugin, { name: 'token-issuer', dependencies: ['jwt', 'repositories'] })
