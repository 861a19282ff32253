/**
 * Single sign-on in the pages, in process, against a real OpenID provider: signing in from the
 * login page, linking an identity from the account page, unlinking it, and what is refused.
 */
import tap from 'tap'
import { type T } from '../helper.js'
import { signInAtProvider, startProvider } from '../oidc-provider.js'
import { buildWeb, PageClient, signUp } from './support.js'

const PUBLIC_URL = 'http://tasks.test'
const CALLBACK = `${PUBLIC_URL}/v1/auth/oidc/callback`

async function setUp (t: T) {
  const provider = await startProvider(t, PUBLIC_URL)
  const app = await buildWeb(t, { ...provider.env, PUBLIC_URL })
  return { app, provider }
}

/** Follows a form's redirect to the provider, signs `login` in there, and follows our callback back: the page it ends on. */
async function throughProvider (client: PageClient, start: Awaited<ReturnType<PageClient['post']>>, login: string) {
  if (start.statusCode !== 303) throw new Error(`the form answered ${start.statusCode} ${start.body.slice(0, 300)}`)
  const back = await signInAtProvider(start.headers.location as string, login, CALLBACK)
  const callback = await client.get(`${back.pathname}${back.search}`)
  if (callback.statusCode !== 302) throw new Error(`the callback answered ${callback.statusCode} ${callback.body.slice(0, 300)}`)
  return await client.get(callback.headers.location as string)
}

tap.test('signing in from the login page, and linking and unlinking from the account page', async (t) => {
  const { app, provider } = await setUp(t)
  provider.users.set('sub-grace', { preferred_username: 'grace', email: 'grace@example.com', email_verified: true })

  const client = new PageClient(app)
  const login = await client.get('/app/login')
  t.match(login.body, 'Sign in with Test Provider')
  const done = await throughProvider(client, await client.post('/app/login/single-sign-on', { next: '/app/projects' }), 'sub-grace')
  t.equal(done.statusCode, 303)
  t.equal(done.headers.location, '/app/projects')
  const account = await client.get('/app/account')
  t.equal(account.statusCode, 200)
  t.match(account.body, '<dd>grace</dd>')
  t.match(account.body, 'grace@example.com</span> at')
  t.match(account.body, 'You have no password', 'no password form for an account without one')

  // The only way in of an account without a password stays.
  const identityId = /\/app\/account\/identities\/([0-9a-f-]{36})\/unlink/.exec(account.body)![1]!
  const refused = await client.post(`/app/account/identities/${identityId}/unlink`)
  t.equal(refused.statusCode, 409)
  t.match(refused.body, 'This is your only way to sign in')

  // Someone with a password links the provider's account, signs in with it, then unlinks it.
  provider.users.set('sub-linked', { email: 'linked@example.com' })
  const user = await signUp(app)
  await user.client.get('/app/account')
  const linked = await throughProvider(user.client, await user.client.post('/app/account/identities/link'), 'sub-linked')
  t.equal(linked.headers.location, '/app/account', { status: linked.statusCode, body: /error-summary[^]*?<\/div>/.exec(linked.body)?.[0] })
  const withIdentity = await user.client.get('/app/account')
  t.match(withIdentity.body, 'Linked: you can now sign in with Test Provider.')
  t.match(withIdentity.body, 'linked@example.com</span> at')

  const other = new PageClient(app)
  await other.get('/app/login')
  await throughProvider(other, await other.post('/app/login/single-sign-on', { next: '/app/account' }), 'sub-linked')
  t.match((await other.get('/app/account')).body, `<dd>${user.username}</dd>`, 'the linked identity signs in to the account')

  // The same identity cannot be linked to a second account.
  await client.get('/app/account')
  const taken = await throughProvider(client, await client.post('/app/account/identities/link'), 'sub-linked')
  t.equal(taken.statusCode, 409)
  t.match(taken.body, 'already signs in to another account')

  const linkedId = /\/app\/account\/identities\/([0-9a-f-]{36})\/unlink/.exec(withIdentity.body)![1]!
  const unlinked = await user.client.post(`/app/account/identities/${linkedId}/unlink`)
  t.equal(unlinked.statusCode, 303)
  t.notMatch((await user.client.get('/app/account')).body, 'linked@example.com')
})

tap.test('a sign-in result this browser did not start is refused', async (t) => {
  const { app, provider } = await setUp(t)
  provider.users.set('sub-mallory', {})
  const mallory = new PageClient(app)
  await mallory.get('/app/login')
  const start = await mallory.post('/app/login/single-sign-on', { next: '/app/tasks' })
  const back = await signInAtProvider(start.headers.location as string, 'sub-mallory', CALLBACK)
  const result = (await mallory.get(`${back.pathname}${back.search}`)).headers.location as string

  // Mallory's finished sign-in, handed to someone else's browser, does not log it in.
  const victim = new PageClient(app)
  await victim.get('/app/login')
  const refused = await victim.get(result)
  t.equal(refused.statusCode, 303)
  t.equal(refused.headers.location, '/app/login?reason=sso_expired')
  t.equal((await victim.get('/app/tasks')).statusCode, 303, 'still logged out')
})
