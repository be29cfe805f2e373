/** Resolves once `total` hits have been counted; remembers when the first one came. */
export class Countdown {
  count = 0;
  /** performance.now() of the first hit, 0 before it. */
  first = 0;
  readonly done: Promise<void>;
  private resolve!: () => void;

  constructor(readonly total: number) {
    this.done = new Promise((r) => (this.resolve = r));
    if (total <= 0) this.resolve();
  }

  hit(n = 1): void {
    if (this.count === 0) this.first = performance.now();
    this.count += n;
    if (this.count >= this.total) this.resolve();
  }
}

export class TimeoutError extends Error {}

/** Bounds every wait of a benchmark, so a stuck peer fails the run instead of hanging it. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what}: no result within ${ms / 1000}s`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` until it holds. Used only at the tail of a drain, so its queries do not load the run. */
export async function pollUntil(
  check: () => Promise<boolean>,
  options: { timeoutMs: number; intervalMs: number; what: string },
): Promise<void> {
  const deadline = performance.now() + options.timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline)
      throw new TimeoutError(`${options.what}: not done within ${options.timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, options.intervalMs));
  }
}
