/** Debian's Chromium under playwright-core, as the browser tests launch it. */
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type BrowserContext, chromium } from 'playwright-core'

export const chromiumPath = '/usr/bin/chromium'

/** CI installs Chromium (.ci/run); elsewhere a browser test says why it did not run instead of failing. */
export const chromiumMissing = !existsSync(chromiumPath) && process.env.CI !== 'true'

/** A headless Chromium with a fresh profile; `close` ends it and removes the profile. */
export async function launchChromium (viewport: { width: number, height: number }): Promise<{ context: BrowserContext, close: () => Promise<void> }> {
  const profile = await mkdtemp(join(tmpdir(), 'tasks-api-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    // No network but loopback here: without these flags Chromium keeps trying to reach Google.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport,
  })
  return {
    context,
    close: async () => {
      await context.close()
      await rm(profile, { recursive: true, force: true })
    },
  }
}
