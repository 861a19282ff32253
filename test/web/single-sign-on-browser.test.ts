/**
 * Single sign-on in a real browser (Debian's Chromium, driven by playwright-core) against a real
 * OpenID provider: "Sign in with …" on the login page, through the provider's forms, back to a
 * web session; then linking the provider's account to a password account from the account page,
 * under the pages' strict CSP.
 */
import type { Page } from 'playwright-core'
import tap from 'tap'
import { chromiumMissing, chromiumMissingReason, launchChromium } from '../chromium.js'
import { JWT_SECRET, serverDatabaseEnv, uniqueName } from '../helper.js'
import { startProvider } from '../oidc-provider.js'
import { startServer } from '../server-process.js'
import { relaxedLimits } from './support.js'

if (chromiumMissing) {
  tap.plan(0, chromiumMissingReason)
} else {
  const provider = await startProvider(tap)
  const server = await startServer({ JWT_SECRET, LOG_LEVEL: 'warn', ...relaxedLimits, ...provider.env, ...await serverDatabaseEnv(tap) })
  tap.teardown(() => server.stop())
  const baseUrl = server.url
  // No PUBLIC_URL: the callback is built from the request's address.
  await provider.serve(baseUrl)
  provider.users.set('sub-hopper', { preferred_username: 'hopper', email: 'hopper@example.com', email_verified: true })
  provider.users.set('sub-link', { email: 'link@example.com' })

  const { newContext, close } = await launchChromium({ width: 1280, height: 900 })
  tap.teardown(close)
  // A browser of its own per test: the provider remembers who signed in last.
  let page: Page
  const problems: string[] = []
  async function newBrowser (): Promise<void> {
    page = await (await newContext()).newPage()
    // Our pages' errors (the test provider's pages are bare), but for the refused unlink, which
    // answers 409 on purpose.
    page.on('console', (message) => {
      if (message.type() !== 'error' || !message.location().url.startsWith(baseUrl) || message.text().includes('status of 409')) return
      problems.push(`${message.text()} at ${message.location().url}`)
    })
    page.on('pageerror', (error) => problems.push(error.message))
  }

  /** Signs `login` in at the provider's forms, from its login page on. */
  async function atProvider (login: string): Promise<void> {
    await page.waitForURL((url) => url.href.startsWith(provider.issuer))
    await page.locator('input[name="login"]').fill(login)
    await page.locator('input[name="password"]').fill('any password')
    await page.getByRole('button', { name: 'Sign-in' }).click()
    await page.getByRole('button', { name: 'Continue' }).click()
  }

  tap.test('sign in with the provider from the login page', async (t) => {
    await newBrowser()
    await page.goto(`${baseUrl}/app/login`)
    await page.getByRole('button', { name: 'Sign in with Test Provider' }).click()
    await atProvider('sub-hopper')
    await page.waitForURL(`${baseUrl}/app/tasks`)
    await page.goto(`${baseUrl}/app/account`)
    t.match(await page.locator('.facts').textContent(), /hopper/)
    t.match(await page.locator('.identities').textContent(), /hopper@example\.com/)

    await page.getByRole('button', { name: 'Unlink' }).click()
    t.match(await page.locator('#identities-error').textContent(), /only way to sign in/)
    await page.getByRole('button', { name: 'Log out' }).click()
    await page.waitForURL(/\/app\/login/)
  })

  tap.test('link the provider\'s account from the account page', async (t) => {
    await newBrowser()
    const username = uniqueName('linker')
    await page.goto(`${baseUrl}/app/signup`)
    await page.getByLabel('Username').fill(username)
    await page.getByLabel('Password').fill('correct horse battery staple')
    await page.getByRole('button', { name: 'Create account' }).click()
    await page.waitForURL(`${baseUrl}/app/tasks`)
    await page.goto(`${baseUrl}/app/account`)
    await page.getByRole('button', { name: 'Link your Test Provider account' }).click()
    await atProvider('sub-link')
    await page.waitForURL(`${baseUrl}/app/account`)
    t.match(await page.locator('.flash').textContent(), /Linked/)
    t.match(await page.locator('.identities').textContent(), /link@example\.com/)

    // Signing in with the linked identity lands in this account.
    await page.getByRole('button', { name: 'Log out' }).click()
    await page.waitForURL(/\/app\/login/)
    await page.getByRole('button', { name: 'Sign in with Test Provider' }).click()
    // The provider remembers the browser now: it may come straight back, or ask again.
    await page.waitForURL((url) => url.href.startsWith(`${baseUrl}/app/tasks`) || url.href.startsWith(provider.issuer))
    if (page.url().startsWith(provider.issuer)) await atProvider('sub-link')
    await page.waitForURL(`${baseUrl}/app/tasks`)
    await page.goto(`${baseUrl}/app/account`)
    t.match(await page.locator('.facts').textContent(), new RegExp(username))
    t.same(problems, [], 'no console errors or CSP violations')
  })
}
