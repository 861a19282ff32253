/**
 * The pages in a real browser (Debian's Chromium, driven by playwright-core), as people use them:
 * sign up, create three tasks, filter, complete one, page through, log out; two people sharing a
 * project, each in a browser of their own; and turning two-factor on, then logging in with a code.
 * Screenshots of the main pages at desktop and phone widths are written to a temporary folder.
 */
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import tap from 'tap'
import { chromiumMissing, chromiumMissingReason, launchChromium } from '../chromium.js'
import { JWT_SECRET, serverDatabaseEnv, uniqueName } from '../helper.js'
import { startServer } from '../server-process.js'
import { awayFromStepEdge, codeAt } from '../totp.js'
import { relaxedLimits } from './support.js'

if (chromiumMissing) {
  tap.plan(0, chromiumMissingReason)
} else {
  const server = await startServer({ JWT_SECRET, LOG_LEVEL: 'warn', ...relaxedLimits, ...await serverDatabaseEnv(tap) })
  tap.teardown(() => server.stop())
  const baseUrl = server.url

  const { context, newContext, close } = await launchChromium({ width: 1280, height: 900 })
  tap.teardown(close)
  const page = await context.newPage()
  // The pages must work without JavaScript; they have none, so the test runs with it on to see
  // CSP violations and console errors reported.
  const problems: string[] = []
  // Pages the test asks for on purpose that answer with an error status (a form with errors, a 404).
  const expectedErrors = new Set<string>()
  /** Reports the page's console errors and warnings, script errors, CSP violations and failed requests in `problems`. */
  async function watch (p: Page): Promise<void> {
    p.on('console', (message) => {
      if (message.text().startsWith('Failed to load resource') && expectedErrors.has(message.location().url)) return
      if (message.type() === 'error' || message.type() === 'warning') problems.push(`console ${message.type()}: ${message.text()} at ${message.location().url}`)
    })
    p.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
    p.on('requestfailed', (request) => problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`))
    // A string, as it runs in the page (this file is compiled without the DOM's types).
    await p.addInitScript(`document.addEventListener('securitypolicyviolation', (event) => {
      console.error('CSP violation: ' + event.violatedDirective + ' blocked ' + event.blockedURI)
    })`)
  }
  await watch(page)

  const shots = await mkdtemp(join(tmpdir(), 'tasks-app-screenshots-'))
  console.error(`# screenshots: ${shots}`)
  /** The current page at desktop and phone widths. */
  async function screenshots (p: Page, name: string): Promise<void> {
    for (const [width, height, label] of [[1280, 900, 'desktop'], [390, 844, 'phone']] as const) {
      await p.setViewportSize({ width, height })
      await p.screenshot({ path: join(shots, `${name}-${label}.png`), fullPage: true })
    }
    await p.setViewportSize({ width: 1280, height: 900 })
  }

  const titles = async (p: Page) => (await p.locator('.task-title').allTextContents()).map((s) => s.trim())

  /** Signs a new person up on `p`; answers their username. */
  async function signUp (p: Page, prefix: string): Promise<string> {
    const username = uniqueName(prefix)
    await p.goto(`${baseUrl}/app/signup`)
    await p.getByLabel('Username').fill(username)
    await p.getByLabel('Password').fill('correct horse battery staple')
    await p.getByRole('button', { name: 'Create account' }).click()
    await p.waitForURL(`${baseUrl}/app/tasks`)
    return username
  }

  tap.test('sign up, create, filter, complete, page and log out', async (t) => {
    const username = uniqueName('browser')
    const password = 'correct horse battery staple'

    await page.goto(`${baseUrl}/app/signup`)
    await page.keyboard.press('Tab')
    t.equal(await page.evaluate('document.activeElement.textContent'), 'Skip to main content', 'the first Tab reaches the skip link')
    await page.getByLabel('Username').fill('x')
    await page.getByLabel('Password').fill('short')
    expectedErrors.add(`${baseUrl}/app/signup`)
    await page.getByRole('button', { name: 'Create account' }).click()
    t.match(await page.locator('#username-error').textContent(), /Choose a username/)
    t.equal(await page.getByLabel('Password').getAttribute('aria-describedby'), 'password-hint password-error', 'the message is tied to its field')
    await screenshots(page, 'signup-errors')

    await page.getByLabel('Username').fill(username)
    await page.getByLabel('Password').fill(password)
    await page.getByRole('button', { name: 'Create account' }).click()
    await page.waitForURL(`${baseUrl}/app/tasks`)
    t.match(await page.locator('.flash').textContent(), /Welcome/)

    const cookies = await context.cookies(`${baseUrl}/app/tasks`)
    const session = cookies.find((c) => c.name === 'tasks_session')
    t.ok(session, 'a session cookie')
    t.equal(session?.httpOnly, true, 'HttpOnly: scripts cannot read it')
    t.equal(session?.sameSite, 'Lax')
    t.equal(await page.evaluate('document.cookie'), '', 'invisible to the page')

    const tasks = [
      { title: 'Buy milk', priority: 'low', tags: 'errands, home' },
      { title: 'Renew passport', priority: 'high', tags: 'errands', due: '2026-12-01T17:00' },
      { title: 'Write report', priority: 'medium', tags: 'work' },
    ]
    for (const task of tasks) {
      await page.getByRole('link', { name: 'New task', exact: true }).first().click()
      await page.getByLabel('Title').fill(task.title)
      await page.getByLabel('Priority').selectOption(task.priority)
      await page.getByLabel('Tags (optional)').fill(task.tags)
      if (task.due !== undefined) await page.getByLabel('Due (optional, UTC)').fill(task.due)
      if (task === tasks[0]) await screenshots(page, 'new-task')
      await page.getByRole('button', { name: 'Create task' }).click()
      await page.waitForURL(`${baseUrl}/app/tasks`)
      t.match(await page.locator('.flash').textContent(), `Task “${task.title}” created.`)
    }
    t.same(await titles(page), ['Write report', 'Renew passport', 'Buy milk'])
    await screenshots(page, 'tasks')

    await page.getByLabel('Tags').fill('errands')
    await page.getByRole('button', { name: 'Apply' }).click()
    t.same(await titles(page), ['Renew passport', 'Buy milk'], 'filtered by tag')
    await page.getByLabel('Priority').selectOption('high')
    await page.getByRole('button', { name: 'Apply' }).click()
    t.same(await titles(page), ['Renew passport'], 'and by priority')

    await page.getByRole('button', { name: 'Complete “Renew passport”' }).click()
    t.match(await page.locator('.flash').textContent(), 'Task “Renew passport” completed.')
    t.match(new URL(page.url()).search, /tag=errands/, 'back to the filtered list')
    await page.goto(`${baseUrl}/app/tasks?completed=true`)
    t.same(await titles(page), ['Renew passport'])
    await page.goto(`${baseUrl}/app/tasks?completed=false`)
    t.same(await titles(page), ['Write report', 'Buy milk'])

    await page.goto(`${baseUrl}/app/tasks`)
    await page.getByLabel('Order').selectOption('title')
    await page.getByLabel('Per page').fill('2')
    await page.getByRole('button', { name: 'Apply' }).click()
    t.same(await titles(page), ['Buy milk', 'Renew passport'])
    // Read once the new page has loaded: a click only starts the navigation.
    await page.getByRole('link', { name: 'Next page' }).click()
    await page.waitForURL((url) => url.searchParams.has('cursor'))
    t.same(await titles(page), ['Write report'], 'the second page')
    t.equal(await page.getByRole('link', { name: 'Next page' }).count(), 0, 'and the last')
    await page.getByRole('link', { name: 'First page' }).click()
    await page.waitForURL((url) => !url.searchParams.has('cursor'))
    t.same(await titles(page), ['Buy milk', 'Renew passport'])

    await page.getByRole('link', { name: 'API keys' }).click()
    await page.getByLabel('Name').fill('export')
    await page.getByRole('button', { name: 'Create key' }).click()
    t.match(await page.locator('#new-key').inputValue(), /^tk_/)
    await screenshots(page, 'api-keys')

    expectedErrors.add(`${baseUrl}/app/tasks/00000000-0000-4000-8000-000000000000`)
    await page.goto(`${baseUrl}/app/tasks/00000000-0000-4000-8000-000000000000`)
    t.match(await page.locator('h1').textContent(), 'Page not found')
    await screenshots(page, 'not-found')

    await page.goto(`${baseUrl}/app/tasks`)
    await page.getByRole('button', { name: 'Log out' }).click()
    await page.waitForURL(/\/app\/login/)
    t.match(await page.locator('.notice').textContent(), 'You are logged out.')
    await screenshots(page, 'logged-out')
    await page.goto(`${baseUrl}/app/tasks`)
    t.match(page.url(), /\/app\/login\?next=/, 'the tasks are behind the login again')

    t.same(problems, [], 'no console errors or warnings, CSP violations or failed requests')
  })

  tap.test('two people share a project: one assigns a task, the other finds it under "Assigned to me"', async (t) => {
    // The second person has a browser context of their own, so the two sessions never share a cookie.
    const theirContext = await newContext()
    t.teardown(() => theirContext.close())
    const theirs = await theirContext.newPage()
    await watch(theirs)
    const start = problems.length

    await signUp(page, 'owner')
    const editor = await signUp(theirs, 'editor')

    await page.getByRole('link', { name: 'Projects', exact: true }).click()
    await page.getByLabel('Name', { exact: true }).fill('Kitchen')
    await page.getByRole('button', { name: 'Create project' }).click()
    t.match(await page.locator('.flash').textContent(), 'Project “Kitchen” created.')
    t.equal(await page.locator('h1').textContent(), 'Kitchen')
    await screenshots(page, 'project')

    await page.getByRole('link', { name: 'Members', exact: true }).click()
    await page.getByLabel('Username', { exact: true }).fill(editor)
    await page.getByLabel('Role', { exact: true }).selectOption('editor')
    await page.getByRole('button', { name: 'Add member' }).click()
    t.match(await page.locator('.flash').textContent(), `${editor} can now read and write the tasks of “Kitchen”.`)
    t.match(await page.getByRole('row', { name: editor }).textContent(), 'Editor')
    await screenshots(page, 'members')

    await page.getByRole('link', { name: 'About the project' }).click()
    await page.getByRole('link', { name: 'New task in “Kitchen”' }).click()
    t.equal(await page.getByLabel('Project', { exact: true }).inputValue(), new URL(page.url()).searchParams.get('project_id'), 'the form is for the project')
    await page.getByLabel('Title').fill('Order tiles')
    await page.getByLabel('Assigned to', { exact: true }).selectOption({ label: editor })
    await screenshots(page, 'new-task-in-project')
    await page.getByRole('button', { name: 'Create task' }).click()
    t.match(await page.locator('.flash').textContent(), 'Task “Order tiles” created.')

    await theirs.getByRole('link', { name: 'Assigned to me' }).click()
    t.same(await titles(theirs), ['Order tiles'])
    t.equal(await theirs.locator('h1').textContent(), 'Assigned to you')
    t.equal(await theirs.locator('.task-meta .project').textContent(), 'In Kitchen')
    t.equal(await theirs.locator('.task-meta .assignee').textContent(), 'Assigned to you')
    await screenshots(theirs, 'assigned-to-me')

    t.same(problems.slice(start), [], 'no console errors or warnings, CSP violations or failed requests')
  })

  tap.test('two-factor: turned on from the account page with the QR code\'s secret, then the login asks for a code', async (t) => {
    // A browser of its own: the first one is still logged in from the test before.
    const ownContext = await newContext()
    t.teardown(() => ownContext.close())
    const p = await ownContext.newPage()
    await watch(p)
    const start = problems.length
    const password = 'correct horse battery staple'
    const username = await signUp(p, 'twofactor')

    await p.getByRole('link', { name: 'Account', exact: true }).click()
    await p.getByRole('link', { name: 'Turn on', exact: true }).click()
    await p.getByLabel('Current password').fill(password)
    await p.getByRole('button', { name: 'Continue' }).click()
    await p.waitForURL(`${baseUrl}/app/account/two-factor/enrol`)
    const qr = await p.locator('.qr-code svg').boundingBox()
    t.ok(qr !== null && qr.width >= 150 && qr.height >= 150, 'the QR code is drawn, large enough to scan')
    await screenshots(p, 'two-factor-enrol')
    // What a person would type into their app instead of scanning.
    const secret = (await p.locator('#totp-secret').textContent())!.replace(/\s/g, '')
    await awayFromStepEdge()
    await p.getByLabel('Code from the app').fill(await codeAt(secret))
    await p.getByRole('button', { name: 'Turn on two-factor' }).click()
    await p.waitForURL(`${baseUrl}/app/account/two-factor/activate`)
    t.equal(await p.locator('h1').textContent(), 'Two-factor authentication is on')
    const codes = await p.locator('.recovery-codes code').allTextContents()
    t.equal(codes.length, 10, 'the recovery codes are shown')
    const [download] = await Promise.all([p.waitForEvent('download'), p.getByRole('link', { name: 'Download the codes' }).click()])
    t.equal(download.suggestedFilename(), 'tasks-recovery-codes.txt')
    t.same((await readFile(await download.path(), 'utf8')).trim().split('\n').slice(-10), codes, 'the download holds the same codes')
    await screenshots(p, 'recovery-codes')

    await p.getByRole('button', { name: 'Log out' }).click()
    await p.waitForURL(/\/app\/login/)
    await p.getByLabel('Username').fill(username)
    await p.getByLabel('Password').fill(password)
    await p.getByRole('button', { name: 'Log in' }).click()
    await p.waitForURL(`${baseUrl}/app/login/two-factor`)
    await screenshots(p, 'two-factor-login')
    // Activation used this step's code: the next one accepted is the next step's.
    await p.getByLabel('Code', { exact: true }).fill(await codeAt(secret, 1))
    await p.getByRole('button', { name: 'Log in' }).click()
    await p.waitForURL(`${baseUrl}/app/tasks`)
    t.equal(await p.locator('.who strong').textContent(), username, 'logged in')

    t.same(problems.slice(start), [], 'no console errors or warnings, CSP violations or failed requests')
  })
}
