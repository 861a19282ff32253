import type { FastifyBaseLogger } from 'fastify'

/** Every security event the service logs; dashboards and alerts key on these names. */
export type SecurityEventName =
  | 'auth.signup'
  | 'auth.login_succeeded'
  | 'auth.login_failed'
  | 'auth.login_throttled'
  | 'auth.token_refused'
  | 'auth.refresh_rotated'
  | 'auth.refresh_reused'
  | 'auth.logout'
  | 'auth.password_changed'
  | 'auth.api_key_created'
  | 'auth.api_key_revoked'
  | 'auth.api_key_refused'
  | 'auth.admin_bootstrapped'
  | 'users.updated_by_admin'
  | 'users.deleted'
  | 'email.verified'
  | 'password.reset_requested'
  | 'password.reset'
  | 'mfa.enabled'
  | 'mfa.disabled'
  | 'mfa.failed'
  | 'recovery_code.used'
  | 'identity.linked'
  | 'identity.unlinked'

/**
 * What an event may say. The fields are ids, names and reasons only: there is deliberately no
 * field that could carry a password, a token or a key.
 */
export interface SecurityEventFields {
  userId?: string
  username?: string
  /** The admin acting on another user. */
  actorId?: string
  familyId?: string
  keyId?: string
  reason?: string
  changes?: { role?: string, disabled?: boolean }
}

const warnings = new Set<SecurityEventName>(['auth.refresh_reused', 'auth.login_throttled', 'mfa.failed', 'mfa.disabled'])

/** One structured log line per event: `{"security":true,"event":"auth.login_failed",...}`. */
export function securityEvent (log: FastifyBaseLogger, event: SecurityEventName, fields: SecurityEventFields = {}): void {
  const line = { security: true, event, ...fields }
  if (warnings.has(event)) log.warn(line, event)
  else log.info(line, event)
}
