import { availableParallelism } from 'node:os'
import { setImmediate as nextTurn } from 'node:timers/promises'
import tap from 'tap'
import { eq } from 'drizzle-orm'
import { hash } from '@node-rs/argon2'
import { users } from '../../src/db/schema.js'
import { type Argon2Call, argon2Channel, hashPassword, passwordWork, verifyPassword } from '../../src/lib/passwords.js'
import { assertProblem, createUser, type T, uniqueName } from '../helper.js'
import { buildProbe, login, type Probe } from './support.js'

/** The app, with every argon2 call it makes recorded while `t` runs (`argon2Channel` in src/lib/passwords.ts). */
async function buildCountingProbe (t: T): Promise<Probe & { argon2Calls: Argon2Call[] }> {
  const calls: Argon2Call[] = []
  const record = (call: unknown) => { calls.push(call as Argon2Call) }
  argon2Channel.subscribe(record)
  t.teardown(() => { argon2Channel.unsubscribe(record) })
  return { ...await buildProbe(t), argon2Calls: calls }
}

tap.test('signup password policy: 8..128 characters, not the username, no composition rules', async (t) => {
  const { app } = await buildProbe(t)
  const signup = (username: string, password: string) => app.inject({ method: 'POST', url: '/v1/auth/signup', payload: { username, password } })
  const name = uniqueName()
  const short = assertProblem(t, await signup(name, 'seven77'), 400, 'VALIDATION_FAILED')
  t.match(short.errors, [{ in: 'body', path: '/password' }])
  assertProblem(t, await signup(name, 'x'.repeat(129)), 400, 'VALIDATION_FAILED')
  const same = assertProblem(t, await signup(`${name}longer`, `${name}LONGER`), 400, 'VALIDATION_FAILED')
  t.match(same.errors, [{ path: '/password', message: /username/ }])
  t.equal((await signup(name, 'aaaaaaaa')).statusCode, 201, 'eight lowercase letters are fine: no composition rules')
  t.equal((await signup(uniqueName(), '🔑'.repeat(64))).statusCode, 201, '128 characters of any script')
  const stored = await app.db.select({ hash: users.passwordHash }).from(users).where(eq(users.username, name))
  t.match(stored[0]!.hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/, 'argon2id with OWASP parameters')
})

tap.test('an oversized password is refused before any hashing', async (t) => {
  const { app, argon2Calls } = await buildCountingProbe(t)
  const res = await login(app, 'someone', 'x'.repeat(1_000_000))
  assertProblem(t, res, 400, 'VALIDATION_FAILED')
  t.same(argon2Calls, [], 'no argon2 work at all')
})

tap.test('unknown user and wrong password: same answer after the same argon2id work', async (t) => {
  const { app, argon2Calls } = await buildCountingProbe(t)
  const user = await createUser(app)
  argon2Calls.length = 0
  const wrong = assertProblem(t, await login(app, user.username, 'not the password'), 401, 'INVALID_CREDENTIALS')
  const afterWrong = argon2Calls.splice(0)
  const unknown = assertProblem(t, await login(app, uniqueName('nobody'), 'not the password'), 401, 'INVALID_CREDENTIALS')
  // Leaving out the dummy hash the first unknown user makes, once per process.
  const afterUnknown = argon2Calls.filter((call) => call.fn === 'verify')
  // Timing is the attacker's signal, but timing in a test is flaky: what makes the two take the
  // same time is one verification each, at the same cost parameters.
  t.same(afterWrong, [{ fn: 'verify', params: 'm=19456,t=2,p=1' }], 'a wrong password: one argon2id verification')
  t.same(afterUnknown, afterWrong, 'an unknown user: the same one verification')
  t.equal(unknown.detail, wrong.detail)
  t.equal(unknown.title, wrong.title)
})

tap.test('a hash made with older parameters is replaced at the next successful login', async (t) => {
  const { app } = await buildProbe(t)
  const user = await createUser(app)
  const weak = await hash(user.password, { algorithm: 1, memoryCost: 4096, timeCost: 1, parallelism: 1 })
  await app.db.update(users).set({ passwordHash: weak }).where(eq(users.id, user.id))
  t.equal((await login(app, user.username, 'wrong password')).statusCode, 401)
  t.equal((await app.db.select().from(users).where(eq(users.id, user.id)))[0]!.passwordHash, weak, 'not on a failed login')
  const res = await login(app, user.username, user.password)
  t.equal(res.statusCode, 200)
  const [row] = await app.db.select().from(users).where(eq(users.id, user.id))
  t.match(row!.passwordHash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/)
  t.equal((await login(app, user.username, user.password)).statusCode, 200, 'the new hash verifies')
  const me = await app.inject({ method: 'GET', url: '/v1/users/me', headers: { authorization: `Bearer ${res.json().access_token}` } })
  t.equal(me.statusCode, 200, 'a rehash is no password change: tokens stay valid')
})

tap.test('hashing runs off the event loop', async (t) => {
  const stored = await hashPassword('a password to check')
  let done = false
  const work = Promise.all([hashPassword('one password'), hashPassword('another one'), verifyPassword(stored, 'a password to check')])
    .finally(() => { done = true })
  // Hashing on the loop would finish before the first turn; off it, the loop turns meanwhile.
  let turns = 0
  while (!done) {
    await new Promise((resolve) => setImmediate(resolve))
    turns += 1
  }
  t.ok((await work)[2].ok)
  t.ok(turns > 50, `the loop turned ${turns} times while three hashes ran`)
})

tap.test('a disabled user cannot log in, with the same answer as a wrong password', async (t) => {
  const { app } = await buildProbe(t)
  const user = await createUser(app)
  await app.db.update(users).set({ disabled: true }).where(eq(users.id, user.id))
  const res = await login(app, user.username, user.password)
  assertProblem(t, res, 401, 'INVALID_CREDENTIALS')
  t.equal(res.json().detail, 'The username or password is wrong.')
})

tap.test('password hashing runs at most one per core at a time; the rest wait their turn', async (t) => {
  const cores = availableParallelism()
  const stored = await hashPassword('correct horse battery')
  let finished = false
  const burst = Promise.all(Array.from({ length: cores + 4 }, async (_, i) =>
    (await verifyPassword(stored, i % 2 === 0 ? 'correct horse battery' : 'a wrong password')).ok))
    .finally(() => { finished = true })
  let widest = 0
  let mostWaiting = 0
  while (!finished) {
    widest = Math.max(widest, passwordWork.activeCount)
    mostWaiting = Math.max(mostWaiting, passwordWork.pendingCount)
    await nextTurn()
  }
  t.same(await burst, Array.from({ length: cores + 4 }, (_, i) => i % 2 === 0), 'every check has its own answer')
  t.equal(widest, cores, `at most ${cores} at once`)
  t.ok(mostWaiting >= 4, `the others waited (${mostWaiting} at most)`)
  t.equal(passwordWork.activeCount + passwordWork.pendingCount, 0, 'nothing is left behind')
})
