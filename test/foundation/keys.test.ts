/**
 * Purpose keys (src/lib/keys.ts): one key per purpose from the root secret, access tokens signed
 * apart, and a rotation of the root that ends nothing at once.
 */
import { hkdfSync } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import tap from 'tap'
import { loadConfig } from '../../src/config.js'
import { createKeyring, keyPurposes, resolveKeyring } from '../../src/lib/keys.js'
import { createPaging } from '../../src/lib/paging.js'
import { taskList } from '../../src/repositories/task-query.js'
import { assertProblem, createUser, injectAs } from '../helper.js'
import { buildWeb, PageClient, signUp } from '../web/support.js'

const OLD = 'the-old-root-secret-of-at-least-32-bytes'
const NEW = 'the-new-root-secret-of-at-least-32-bytes'
const TOKENS = 'a-token-signing-secret-of-at-least-32-bytes'

tap.test('each purpose has a key of its own, derived from the root secret', async (t) => {
  const keys = createKeyring({ SECRET_KEY: NEW })
  const all = Object.keys(keyPurposes).map((purpose) => keys.keysFor(purpose as keyof typeof keyPurposes)[0]!.toString('hex'))
  t.equal(new Set(all).size, all.length, 'no two purposes share a key')
  t.ok(all.every((key) => key.length === 64), '32 bytes each')
  t.not(keys.tokenSigning, NEW, 'with SECRET_KEY alone, access tokens are signed with a derived key, not the root')
  t.equal(createKeyring({ SECRET_KEY: NEW, JWT_SECRET: TOKENS }).tokenSigning, TOKENS, 'JWT_SECRET signs access tokens when set')
  t.same(createKeyring({ SECRET_KEY: NEW, JWT_SECRET: TOKENS }).keysFor('sessionCookie'), keys.keysFor('sessionCookie'), 'and changes no other key')

  // Deployments that set only JWT_SECRET keep their sessions and cursors across the upgrade.
  const legacy = createKeyring({ JWT_SECRET: TOKENS })
  t.equal(legacy.tokenSigning, TOKENS)
  t.same(legacy.keysFor('sessionCookie')[0], Buffer.from(hkdfSync('sha256', TOKENS, '', 'tasks-api/app/session-cookie', 32)), 'JWT_SECRET alone is the root, as before')
})

tap.test('a rotated root still verifies what the previous one signed, and signs anew', async (t) => {
  const before = createPaging(taskList, { keys: createKeyring({ SECRET_KEY: OLD }).keysFor('tasksCursor') })
  const during = createPaging(taskList, { keys: createKeyring({ SECRET_KEY: NEW, SECRET_KEY_PREVIOUS: `${OLD}` }).keysFor('tasksCursor') })
  const after = createPaging(taskList, { keys: createKeyring({ SECRET_KEY: NEW }).keysFor('tasksCursor') })
  const oldCursor = before.cursorAfter(before.open('u', {}), ['k', 'id'])!
  t.same(during.open('u', { cursor: oldCursor }).after, ['k', 'id'], 'an old cursor works while its root is listed in SECRET_KEY_PREVIOUS')
  t.equal(after.tryOpen('u', { cursor: oldCursor }), undefined, 'and not once it is dropped')
  const newCursor = during.cursorAfter(during.open('u', {}), ['k', 'id'])!
  t.same(after.open('u', { cursor: newCursor }).after, ['k', 'id'], 'new cursors are signed with the new root')
  t.equal(before.tryOpen('u', { cursor: newCursor }), undefined)
})

tap.test('rotating SECRET_KEY keeps web sessions with SECRET_KEY_PREVIOUS; rotating JWT_SECRET ends access tokens only', async (t) => {
  const first = await buildWeb(t, { SECRET_KEY: OLD, JWT_SECRET: TOKENS })
  const person = await signUp(first)
  t.equal((await person.client.get('/app/tasks')).statusCode, 200, 'logged in')
  const apiUser = await createUser(first)
  t.equal((await injectAs(first, apiUser, { method: 'GET', url: '/v1/tasks' })).statusCode, 200)

  /** A browser holding the person's cookies, at another instance of the service. */
  const withCookies = (app: typeof first) => {
    const client = new PageClient(app)
    for (const [name, value] of person.client.cookies) client.cookies.set(name, value)
    return client
  }
  const rotated = await buildWeb(t, { SECRET_KEY: NEW, SECRET_KEY_PREVIOUS: OLD, JWT_SECRET: TOKENS })
  const again = withCookies(rotated)
  t.equal((await again.get('/app/tasks')).statusCode, 200, 'the session survives a rotation of SECRET_KEY')
  t.equal((await injectAs(rotated, apiUser, { method: 'GET', url: '/v1/tasks' })).statusCode, 200, 'and access tokens too')

  const dropped = await buildWeb(t, { SECRET_KEY: NEW, JWT_SECRET: TOKENS })
  const stranger = withCookies(dropped)
  const res = await stranger.get('/app/tasks')
  t.equal(res.statusCode, 303, 'once the old root is dropped, its cookies no longer open a session')
  t.match(res.headers.location, /^\/app\/login/)

  const newTokens = await buildWeb(t, { SECRET_KEY: OLD, JWT_SECRET: `${TOKENS}-rotated` })
  assertProblem(t, await injectAs(newTokens, apiUser, { method: 'GET', url: '/v1/tasks' }), 401, 'INVALID_TOKEN')
  const refreshed = await newTokens.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refresh_token: apiUser.refreshToken } })
  t.equal(refreshed.statusCode, 200, 'a client refreshes its way past a new JWT_SECRET')
  const stillIn = withCookies(newTokens)
  t.equal((await stillIn.get('/app/tasks')).statusCode, 200, 'and web sessions do not notice it')
})

tap.test('configuration: production needs a root secret; previous ones are checked and never shown', async (t) => {
  t.match(t.throws(() => loadConfig({ NODE_ENV: 'production' })), { problems: [/SECRET_KEY: required/] })
  t.ok(loadConfig({ NODE_ENV: 'production', SECRET_KEY: NEW }))
  t.ok(loadConfig({ NODE_ENV: 'production', JWT_SECRET: TOKENS }), 'JWT_SECRET alone, as before')
  const err = t.throws(() => loadConfig({ SECRET_KEY: NEW, SECRET_KEY_PREVIOUS: `${OLD},short` })) as Error
  t.match(err.message, /SECRET_KEY_PREVIOUS=\(hidden\): each comma-separated secret must be at least 32 bytes/)
  t.notMatch(err.message, /short|the-old/)
  t.notMatch((t.throws(() => loadConfig({ SECRET_KEY: 'too-short' })) as Error).message, /too-short/)
})

tap.test('without secrets, outside production, a root secret is generated once under DATA_DIR', async (t) => {
  const dir = t.testdir()
  const warnings: string[] = []
  const config = loadConfig({ DATA_DIR: dir })
  const first = await resolveKeyring(config, (m) => warnings.push(m))
  const second = await resolveKeyring(config, (m) => warnings.push(m))
  t.same(first.keysFor('sessionCookie'), second.keysFor('sessionCookie'), 'the same keys after a restart')
  t.equal(first.tokenSigning, second.tokenSigning)
  t.ok((await readFile(join(dir, 'secret-key'), 'utf8')).trim().length >= 32)
  t.match(warnings, [/generated a development secret/, /using the development secret/])
  const legacy: string[] = []
  await resolveKeyring(loadConfig({ DATA_DIR: dir, JWT_SECRET: TOKENS }), (m) => legacy.push(m))
  t.match(legacy, [/SECRET_KEY is not set: cursor and session keys are derived from JWT_SECRET/], 'JWT_SECRET alone is warned about')
})
