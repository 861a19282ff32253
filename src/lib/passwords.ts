import { channel } from 'node:diagnostics_channel'
import { availableParallelism } from 'node:os'
import { type Algorithm, hash, verify } from '@node-rs/argon2'
import pLimit from 'p-limit'
import { problem } from '../errors.js'

/**
 * argon2id with OWASP's recommended minimum (19 MiB, 2 iterations, 1 lane). @node-rs/argon2 runs
 * on libuv's thread pool, so hashing never blocks the event loop.
 * @see https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html
 */
// The binding's Algorithm is a const enum, which isolated modules cannot read: 2 is Argon2id.
const params = { algorithm: 2 as Algorithm.Argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const
const paramsTag = `m=${params.memoryCost},t=${params.timeCost},p=${params.parallelism}`

/**
 * Every hash or verification holds 19 MiB while it runs. Running more at once than there are cores
 * finishes none sooner, but a burst of logins would take 19 MiB on each of libuv's threads (and keep
 * them from file and DNS work), so the rest wait their turn here.
 */
export const passwordWork = pLimit(availableParallelism())

/** What one argon2 call did: a hash, or a verification against a hash made with `params`. */
export type Argon2Call = { fn: 'hash' } | { fn: 'verify', params: string | undefined }

/**
 * Each argon2 call is published here before it runs, so an observer (the tests) can see how much
 * password work a request did without timing it. Without a subscriber nothing is built.
 */
export const argon2Channel = channel('tasks-api:argon2')

async function argon2Verify (storedHash: string, password: string): Promise<boolean> {
  if (argon2Channel.hasSubscribers) argon2Channel.publish({ fn: 'verify', params: /\$(m=\d+,t=\d+,p=\d+)\$/.exec(storedHash)?.[1] } satisfies Argon2Call)
  return await passwordWork(async () => await verify(storedHash, password)).catch(() => false)
}

export async function hashPassword (password: string): Promise<string> {
  if (argon2Channel.hasSubscribers) argon2Channel.publish({ fn: 'hash' } satisfies Argon2Call)
  return await passwordWork(async () => await hash(password, params))
}

/**
 * NIST SP 800-63B: length (8..128, enforced by the Password schema before any hashing) and not the
 * username; no composition rules. `path` names the field in the 400's `errors`.
 */
export function assertPasswordPolicy (password: string, username: string, path: string): void {
  if (password.toLowerCase() === username.toLowerCase()) {
    throw problem('VALIDATION_FAILED', 'The password must not equal the username.', {
      errors: [{ in: 'body', path, message: 'must not equal the username' }],
    })
  }
}

export interface PasswordCheck {
  ok: boolean
  /** The hash was made with other parameters: store a fresh one now that we know the password. */
  needsRehash: boolean
}

/** An account without a password (made by single sign-on) fails like a wrong password, after the same work. */
export async function verifyPassword (storedHash: string | null, password: string): Promise<PasswordCheck> {
  if (storedHash === null) {
    await verifyAgainstDummy(password)
    return { ok: false, needsRehash: false }
  }
  const ok = await argon2Verify(storedHash, password)
  return { ok, needsRehash: ok && !(storedHash.startsWith('$argon2id$') && storedHash.includes(paramsTag)) }
}

// Verifying against a real hash when the user does not exist makes "no such user" take as long
// as "wrong password", so timing does not reveal which usernames exist.
let dummyHash: Promise<string> | undefined
export async function verifyAgainstDummy (password: string): Promise<void> {
  dummyHash ??= hashPassword('dummy password that matches nothing')
  const stored = await dummyHash
  await argon2Verify(stored, password)
}
