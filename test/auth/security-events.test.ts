import tap from 'tap'
import { createUser } from '../helper.js'
import { bearer, buildProbe, createAdmin, login } from './support.js'

tap.test('security events are structured log lines that never contain a password, token or key', async (t) => {
  const { app, logs } = await buildProbe(t)
  const admin = await createAdmin(app)
  const user = await createUser(app)
  await login(app, user.username, 'a wrong password')
  const rotated = (await app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refresh_token: user.refreshToken } })).json()
  await app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refresh_token: user.refreshToken } })
  const key = (await app.inject({ method: 'POST', url: '/v1/api-keys', headers: bearer(user.accessToken), payload: { name: 'k', scopes: ['tasks:read'] } })).json()
  await app.inject({ method: 'GET', url: '/v1/probe/read', headers: { 'x-api-key': key.key } })
  await app.inject({ method: 'DELETE', url: `/v1/api-keys/${key.id}`, headers: bearer(user.accessToken) })
  await app.inject({ method: 'POST', url: '/v1/users/me/password', headers: bearer(user.accessToken), payload: { current_password: user.password, new_password: 'the next passphrase' } })
  await app.inject({ method: 'PATCH', url: `/v1/users/${user.id}`, headers: bearer(admin.accessToken), payload: { role: 'admin' } })
  await app.inject({ method: 'POST', url: '/v1/auth/logout', payload: { refresh_token: admin.refreshToken } })

  const lines = logs().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  const events = lines.filter((l) => l.security === true).map((l) => l.event)
  for (const event of [
    'auth.signup', 'auth.login_succeeded', 'auth.login_failed', 'auth.refresh_rotated', 'auth.refresh_reused',
    'auth.api_key_created', 'auth.api_key_revoked', 'auth.password_changed', 'users.updated_by_admin', 'auth.logout',
  ]) t.ok(events.includes(event), event)
  const failed = lines.find((l) => l.event === 'auth.login_failed')!
  t.match(failed, { username: user.username, reason: 'wrong password', reqId: String })

  const text = logs()
  for (const secret of [user.password, 'a wrong password', 'the next passphrase', admin.password, user.accessToken, user.refreshToken, rotated.refresh_token, rotated.access_token, key.key, admin.accessToken, admin.refreshToken]) {
    t.notOk(text.includes(secret), `no secret in the logs (${secret.slice(0, 6)}…)`)
  }
})
