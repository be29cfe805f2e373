/**
 * In-process wake-up signals: consumers wait on a queue name; whoever learns that work may be available
 * (a local commit, a PostgreSQL notification) calls notify. A wait always has a timeout, so a missed
 * signal costs at most one poll interval, never a stuck consumer.
 */
export class Wakeups {
  private readonly waiters = new Map<string, Set<() => void>>();

  notify(queue: string): void {
    const set = this.waiters.get(queue);
    if (!set) return;
    this.waiters.delete(queue);
    for (const wake of set) wake();
  }

  /** Wake every waiter: used after a reconnect, when notifications may have been missed. */
  notifyAll(): void {
    for (const queue of [...this.waiters.keys()]) this.notify(queue);
  }

  /** Resolves true when notified, false on timeout or abort. */
  wait(queue: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      let set = this.waiters.get(queue);
      if (!set) this.waiters.set(queue, (set = new Set()));
      const done = (woken: boolean): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.waiters.get(queue)?.delete(wake);
        resolve(woken);
      };
      const wake = (): void => done(true);
      const onAbort = (): void => done(false);
      const timer = setTimeout(() => done(false), Math.max(0, timeoutMs));
      set.add(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  get waiting(): number {
    let n = 0;
    for (const set of this.waiters.values()) n += set.size;
    return n;
  }
}
