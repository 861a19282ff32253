/**
 * The /docs explorer in a real browser (Debian's Chromium, driven by playwright-core): the page
 * renders under the Content-Security-Policy, the OAuth2 password flow authorizes a real user, and
 * "Try it out" creates and lists tasks.
 */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Locator } from 'playwright-core'
import tap from 'tap'
import { chromiumMissing, chromiumMissingReason, launchChromium } from '../chromium.js'
import { listeningServer, newAccount } from '../sdk/support.js'

if (chromiumMissing) {
  tap.plan(0, chromiumMissingReason)
} else {
  const baseUrl = await listeningServer(tap)
  const account = newAccount()
  const signup = await fetch(`${baseUrl}/v1/auth/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(account) })
  if (signup.status !== 201) throw new Error(`signup failed: ${signup.status} ${await signup.text()}`)

  const { context, close } = await launchChromium({ width: 1280, height: 1000 })
  tap.teardown(close)
  const page = await context.newPage()

  const problems: string[] = []
  page.on('console', (message) => { if (message.type() === 'error' || message.type() === 'warning') problems.push(`console ${message.type()}: ${message.text()}`) })
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
  page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`))
  // Runs in the page (as text: this project's types have no DOM), turning violations into console errors.
  await page.addInitScript({
    content: "document.addEventListener('securitypolicyviolation', (e) => console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + e.blockedURI))",
  })

  /** Expands an operation, runs it with no parameters and `body` (if any), and returns its live response's status cell. */
  async function tryItOut (operation: Locator, body?: string): Promise<Locator> {
    await operation.locator('.opblock-summary').first().click()
    const toggle = operation.locator('.try-out__btn')
    if ((await toggle.textContent())?.trim() === 'Try it out') await toggle.click()
    // Swagger UI pre-fills parameters with their examples (tag=work, q=…), which would filter
    // everything out: clear them, as a user would, to see the unfiltered list.
    for (const input of await operation.locator('.parameters input[type=text]').all()) await input.fill('')
    for (const select of await operation.locator('.parameters select').all()) await select.selectOption({ index: 0 })
    if (body !== undefined) await operation.locator('textarea.body-param__text').fill(body)
    await operation.locator('button.execute').click()
    const status = operation.locator('.live-responses-table .response .response-col_status').first()
    await status.waitFor({ timeout: 15_000 })
    return status
  }

  tap.test('/docs renders, authorizes with the password flow and runs createTask and listTasks', async (t) => {
    // A picture of the page as the test left it, passed or failed, to look at.
    t.teardown(async () => {
      const screenshot = join(await mkdtemp(join(tmpdir(), 'tasks-api-docs-')), 'docs.png')
      await page.screenshot({ path: screenshot })
      console.error(`# screenshot: ${screenshot}`)
    })
    const response = await page.goto(`${baseUrl}/docs`)
    t.equal(response?.status(), 200)
    t.match(response?.headers()['content-security-policy'], /script-src 'self'/, 'served under the strict CSP')
    await page.locator('.swagger-ui .info .title').waitFor({ timeout: 15_000 })
    t.match(await page.locator('.swagger-ui .info .title').textContent(), /Tasks API/)

    await page.locator('.auth-wrapper button.authorize').click()
    const dialog = page.locator('.dialog-ux')
    const oauth = dialog.locator('.auth-container').filter({ hasText: 'oauth2' })
    await oauth.locator('#oauth_username').fill(account.username)
    await oauth.locator('#oauth_password').fill(account.password)
    await oauth.locator('button', { hasText: 'Authorize' }).click()
    await oauth.locator('button', { hasText: 'Logout' }).waitFor({ timeout: 15_000 })
    t.match(await oauth.textContent(), /Authorized/, 'the token endpoint accepted the real user')
    await oauth.locator('button', { hasText: 'Close' }).click()
    await dialog.waitFor({ state: 'detached' })

    const title = `From the explorer ${Date.now()}`
    const create = page.locator('#operations-tasks-createTask')
    const created = await tryItOut(create, JSON.stringify({ title, priority: 'high', tags: ['docs'] }))
    t.equal((await created.textContent())?.trim(), '201', 'createTask answered 201 in the page')
    t.match(await create.locator('.live-responses-table .response .response-col_description').first().textContent(), title)

    const list = page.locator('#operations-tasks-listTasks')
    const listed = await tryItOut(list)
    t.equal((await listed.textContent())?.trim(), '200', 'listTasks answered 200 in the page')
    t.match(await list.locator('.live-responses-table .response .response-col_description').first().textContent(), title, 'the new task is listed')
    await list.locator('.live-responses-table').scrollIntoViewIfNeeded()

    t.same(problems, [], 'no console errors or warnings, CSP violations or failed requests')
  })
}
