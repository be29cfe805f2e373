/**
 * Capped exponential backoff with full jitter, for loops that must survive the database going away (a
 * restart, a failover): each failure waits longer, up to `maxMs`, and one success resets it. The jitter keeps
 * a fleet of nodes from reconnecting in lockstep.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly minMs = 100,
    private readonly maxMs = 5_000,
    private readonly random: () => number = Math.random,
  ) {}

  /** Failures in a row so far. */
  get failures(): number {
    return this.attempt;
  }

  /** The wait after one more failure. */
  next(): number {
    const cap = Math.min(this.maxMs, this.minMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.max(this.minMs / 2, Math.floor(this.random() * cap));
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** Sleeps `ms`, or less if the signal aborts first. Never rejects. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
