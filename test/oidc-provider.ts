import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair } from 'jose'
import Provider, { type Adapter, type AdapterPayload } from 'oidc-provider'
import type { T } from './helper.js'

export const CLIENT_ID = 'tasks-api'
export const CLIENT_SECRET = 'tasks-api-client-secret-for-the-tests'

/** What the provider says of a user at sign-in. */
export interface ProviderUser { preferred_username?: string, email?: string, email_verified?: boolean }

export interface TestProvider {
  issuer: string
  /** Starts answering, with the client's redirect URI under `publicUrl` (known once the service listens). */
  serve: (publicUrl: string) => Promise<void>
  /** Users by their `sub` (the login typed into the provider's form); unknown ones have no claims but `sub`. */
  users: Map<string, ProviderUser>
  /** The OIDC_* settings of a service using this provider. */
  env: Record<string, string>
}

/** The provider's storage, in this process's memory, keyed by model name and id. */
function memoryAdapter (store: Map<string, AdapterPayload>) {
  return (model: string): Adapter => {
    const key = (id: string) => `${model}:${id}`
    const find = (match: (payload: AdapterPayload) => boolean) => [...store].find(([name, payload]) => name.startsWith(`${model}:`) && match(payload))?.[1]
    return {
      upsert: async (id, payload) => { store.set(key(id), payload) },
      find: async (id) => store.get(key(id)),
      findByUid: async (uid) => find((payload) => payload.uid === uid),
      findByUserCode: async (userCode) => find((payload) => payload.userCode === userCode),
      consume: async (id) => { const payload = store.get(key(id)); if (payload !== undefined) payload.consumed = Math.floor(Date.now() / 1000) },
      destroy: async (id) => { store.delete(key(id)) },
      revokeByGrantId: async (grantId) => { for (const [name, payload] of store) if (payload.grantId === grantId) store.delete(name) },
    }
  }
}

async function formBody (request: IncomingMessage): Promise<URLSearchParams> {
  let body = ''
  for await (const chunk of request) body += String(chunk)
  return new URLSearchParams(body)
}

/**
 * A real OpenID provider (oidc-provider) on a loopback port, with one confidential client whose
 * redirect URI is the service's callback under `publicUrl`, given now or later to `serve`. Its
 * login form (ours, at /interaction/:uid) accepts any login, with any password, as the user's
 * `sub`; its consent form grants the scopes asked for.
 */
export async function startProvider (t: T, publicUrl?: string): Promise<TestProvider> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await new Promise((resolve) => server.close(resolve)) })
  server.closeIdleConnections()
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const users = new Map<string, ProviderUser>()
  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  const serve = async (serviceUrl: string) => {
    const provider = new Provider(issuer, {
      jwks: { keys: [{ ...await exportJWK(privateKey), kid: 'test', alg: 'RS256', use: 'sig' }] },
      // The claims go into the ID token, as Dex, Keycloak and the large providers put them.
      conformIdTokenClaims: false,
      clients: [{
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: [`${serviceUrl}/v1/auth/oidc/callback`],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      }],
      claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['preferred_username'] },
      cookies: { keys: ['test-provider-cookie-key-of-some-length'] },
      ttl: { Interaction: 600, Session: 600, Grant: 600, AccessToken: 600, IdToken: 600 },
      adapter: memoryAdapter(new Map()),
      interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
      features: { devInteractions: { enabled: false } },
      findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub, ...users.get(sub) }) }),
    })
    const callback = provider.callback()
    server.on('request', (request, response) => {
      if (!request.url!.startsWith('/interaction/')) return callback(request, response)
      void (async () => {
        const { uid, prompt, params, session } = await provider.interactionDetails(request, response)
        if (request.method === 'GET') {
          const fields = prompt.name === 'login'
            ? '<input type="text" name="login"><input type="password" name="password"><button type="submit">Sign-in</button>'
            : '<button type="submit">Continue</button>'
          response.setHeader('content-type', 'text/html; charset=utf-8')
          response.end(`<!doctype html><title>Test provider</title><form method="post" action="/interaction/${uid}"><input type="hidden" name="prompt" value="${prompt.name}">${fields}</form>`)
          return
        }
        const form = await formBody(request)
        if (prompt.name === 'login') {
          await provider.interactionFinished(request, response, { login: { accountId: form.get('login')! } }, { mergeWithLastSubmission: false })
          return
        }
        const grant = new provider.Grant({ accountId: session!.accountId, clientId: params.client_id as string })
        grant.addOIDCScope(params.scope as string)
        await provider.interactionFinished(request, response, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true })
      })().catch((err: unknown) => { response.statusCode = 500; response.end(String(err)) })
    })
  }
  if (publicUrl !== undefined) await serve(publicUrl)
  t.teardown(() => { server.closeAllConnections() })
  return {
    issuer,
    serve,
    users,
    env: { OIDC_ISSUER: issuer, OIDC_CLIENT_ID: CLIENT_ID, OIDC_CLIENT_SECRET: CLIENT_SECRET, OIDC_NAME: 'Test Provider' },
  }
}

/**
 * Drives the provider's login and consent forms as a browser would, keeping its cookies, from its
 * authorization URL until it redirects to a URL under `until`: that URL.
 */
export async function signInAtProvider (authorizationUrl: string, login: string, until: string): Promise<URL> {
  const cookies = new Map<string, string>()
  let url = new URL(authorizationUrl)
  let request: RequestInit = {}
  for (let step = 0; step < 20; step++) {
    const res = await fetch(url, {
      ...request,
      redirect: 'manual',
      headers: { ...request.headers as Record<string, string>, cookie: [...cookies].map(([name, value]) => `${name}=${value}`).join('; ') },
    })
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';')
      const at = pair!.indexOf('=')
      cookies.set(pair!.slice(0, at), pair!.slice(at + 1))
    }
    const location = res.headers.get('location')
    if (location !== null) {
      await res.arrayBuffer()
      url = new URL(location, url)
      if (url.href.startsWith(until)) return url
      request = {}
      continue
    }
    const page = await res.text()
    const action = /<form[^>]*action="([^"]+)"/.exec(page)?.[1]
    const prompt = /name="prompt" value="([^"]+)"/.exec(page)?.[1]
    if (action === undefined || prompt === undefined) throw new Error(`the provider answered ${res.status} without a form: ${page.slice(0, 500)}`)
    const fields: Record<string, string> = prompt === 'login' ? { prompt, login, password: 'any password' } : { prompt }
    url = new URL(action, url)
    request = { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() }
  }
  throw new Error('the provider did not redirect back')
}
