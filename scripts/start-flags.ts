import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { projectRoot } from '../src/lib/project-root.js'

/**
 * The V8 flags `npm start` runs the service with (see docs/decisions/0013-v8-heap-flags.md): the one place they are
 * written, read by `npm run bench` and checked against the Dockerfile's CMD by the tests. They are
 * the options of the script's last `node` command but `--enable-source-maps`, which only maps stack
 * traces to src/ for the person reading them.
 */
export async function startFlags (): Promise<string[]> {
  const start = JSON.parse(await readFile(join(projectRoot, 'package.json'), 'utf8')).scripts.start as string
  const words = start.split(' ')
  return words.slice(words.lastIndexOf('node') + 1).filter((word) => word.startsWith('--') && word !== '--enable-source-maps')
}
