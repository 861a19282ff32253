/** TOTP codes as an authenticator app shows them, computed with otplib, for the tests that log in with two-factor. */
import { generate } from 'otplib'

const PERIOD = 30

/**
 * The code an authenticator shows `stepsFromNow` steps from now. A code is accepted only for a step
 * after the last one accepted, and one step either side of now: after activating with this step's
 * code, the next login takes the next step's (`codeAt(secret, 1)`).
 */
export async function codeAt (secret: string, stepsFromNow = 0): Promise<string> {
  return await generate({ secret, epoch: Math.floor(Date.now() / 1000) + stepsFromNow * PERIOD })
}

/** Waits until the current step has at least `seconds` left, so that a test's codes share a step. */
export async function awayFromStepEdge (seconds = 5): Promise<void> {
  const left = PERIOD - (Math.floor(Date.now() / 1000) % PERIOD)
  if (left < seconds) await new Promise((resolve) => setTimeout(resolve, left * 1000 + 200))
}
