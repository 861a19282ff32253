import { basename, extname } from 'node:path'

/**
 * True when the process was started with the script named `name` (`scripts/<name>.ts` under tsx,
 * or its compiled `<name>.js`), false when the script is only imported. By name rather than by
 * `import.meta.url`: a bundle moves a module's code into the file that imports it, whose URL is then
 * the one the process started with.
 */
export function runsAsScript (name: string): boolean {
  const started = process.argv[1]
  return started !== undefined && basename(started, extname(started)) === name
}
