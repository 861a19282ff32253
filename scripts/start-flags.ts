import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { projectRoot } from '../src/lib/project-root.js'

/**
 * The V8 flags `npm start` runs the service with (see README, Performance): the one place they are
 * written, read by `npm run bench` and checked against the Dockerfile's CMD by the tests.
 */
export async function startFlags (): Promise<string[]> {
  const start = JSON.parse(await readFile(join(projectRoot, 'package.json'), 'utf8')).scripts.start as string
  const words = start.split(' ')
  return words.slice(words.indexOf('node') + 1, words.indexOf('--import'))
}
