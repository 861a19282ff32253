/** The SDK renews an expired access token with its refresh token: once, however many calls hit the 401. */
import { setTimeout as sleep } from 'node:timers/promises'
import tap from 'tap'
import { createTasksApi, type Credentials, ProblemError, unwrap } from '../../sdk/src/index.js'
import { listeningServer, newAccount } from './support.js'

const ttlSeconds = 10 // the shortest ACCESS_TOKEN_TTL the server accepts
const baseUrl = await listeningServer(tap, { ACCESS_TOKEN_TTL: String(ttlSeconds) })

tap.test('expired access tokens are refreshed once and the calls retried', async (t) => {
  const account = newAccount()
  await unwrap(createTasksApi({ baseUrl }).POST('/v1/auth/signup', { body: account }))
  const other = newAccount()
  await unwrap(createTasksApi({ baseUrl }).POST('/v1/auth/signup', { body: other }))

  let refreshCalls = 0
  const changes: Array<Credentials | undefined> = []
  const api = createTasksApi({
    baseUrl,
    onCredentialsChange: (credentials) => changes.push(credentials),
    fetch: (request) => {
      if (new URL(request.url).pathname === '/v1/auth/refresh') refreshCalls += 1
      return fetch(request)
    },
  })
  const first = await api.logIn(account.username, account.password)
  await unwrap(api.POST('/v1/tasks', { body: { title: 'Survives a refresh' } }))

  // A second session whose refresh token is revoked meanwhile: its 401 must reach the caller.
  const revokedChanges: Array<Credentials | undefined> = []
  const revoked = createTasksApi({ baseUrl, onCredentialsChange: (c) => revokedChanges.push(c) })
  const revokedTokens = await revoked.logIn(other.username, other.password)
  await unwrap(createTasksApi({ baseUrl }).POST('/v1/auth/logout', { body: { refresh_token: revokedTokens.refresh_token } }))

  await sleep((ttlSeconds + 1.5) * 1000)
  const expired = await fetch(`${baseUrl}/v1/tasks`, { headers: { authorization: `Bearer ${first.access_token}` } })
  t.equal(expired.status, 401, 'the first access token has expired')

  const pages = await Promise.all(Array.from({ length: 5 }, () => unwrap(api.GET('/v1/tasks'))))
  t.same(pages.map((page) => page.items.length), [1, 1, 1, 1, 1], 'every concurrent call succeeded')
  t.equal(refreshCalls, 1, 'one refresh for five 401s')
  t.equal(changes.length, 2, 'log-in, then one refresh')
  const renewed = api.credentials as { accessToken: string, refreshToken: string }
  t.not(renewed.accessToken, first.access_token)
  t.not(renewed.refreshToken, first.refresh_token, 'the refresh token rotated')
  t.same(changes[1], renewed)

  const failure = await unwrap(revoked.GET('/v1/tasks')).catch((error: unknown) => error)
  t.ok(failure instanceof ProblemError, 'a refused refresh surfaces the 401 as a problem')
  t.equal((failure as ProblemError).status, 401)
  t.equal(revoked.credentials, undefined, 'and the dead session is forgotten')
  t.equal(revokedChanges.at(-1), undefined)
})
