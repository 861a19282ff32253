/**
 * A function that runs `run` at once, then at most once per `intervalMs`: the calls that come while
 * an interval runs make one run at its end. For wake-ups, where every call would do the same work.
 */
export function atMostEvery (intervalMs: number, run: () => void): () => void {
  let waiting = false
  let again = false
  const fire = (): void => {
    waiting = true
    again = false
    run()
    setTimeout(() => {
      waiting = false
      if (again) fire()
    }, intervalMs).unref()
  }
  return () => {
    if (waiting) again = true
    else fire()
  }
}
