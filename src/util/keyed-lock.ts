/**
 * Runs functions one at a time per key (a promise chain per key); different keys run in
 * parallel. A failure does not block the next caller. Keys are forgotten when idle.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.tails.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Resolves when everything started so far has finished (successfully or not). */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.tails.values()]);
  }
}
