/**
 * Debian's Chromium under playwright-core, as the browser tests launch it: its headless shell (the
 * `chromium-headless-shell` package, the old headless mode that Playwright itself runs headless
 * tests in), which renders the same pages for about half the CPU of the full browser.
 */
import { existsSync } from 'node:fs'
import { type Browser, type BrowserContext, chromium } from 'playwright-core'

export const chromiumPath = '/usr/bin/chromium-headless-shell'

/** CI installs Chromium (.ci/run); elsewhere a browser test says why it did not run instead of failing. */
export const chromiumMissing = !existsSync(chromiumPath) && process.env.CI !== 'true'

/** What a browser test's plan says when it does not run. */
export const chromiumMissingReason = `${chromiumPath} is missing: apt-get install -y chromium-headless-shell`

/**
 * A headless Chromium and a first browser context (a fresh profile: its own cookies and storage);
 * `newContext` opens another, for a second person, without starting a second browser. `close` ends
 * the browser.
 */
export async function launchChromium (viewport: { width: number, height: number }): Promise<{ context: BrowserContext, newContext: () => Promise<BrowserContext>, close: () => Promise<void> }> {
  const browser: Browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    // No network but loopback here: without these flags Chromium keeps trying to reach Google.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  })
  const newContext = async () => await browser.newContext({ viewport })
  return { context: await newContext(), newContext, close: async () => await browser.close() }
}
