import type { Runner } from './runtimes/runner.js';

export interface WorkerPoolOptions {
  /** For messages: which pool and runner kind this is. */
  label: string;
  /** Warm capacity: runners started up front and kept, replaced when one dies. */
  min: number;
  /** Most runners this pool may have (its share of the node's cores and memory). */
  max: number;
  /** Runs in flight per runner; 1 for CPU-bound work. */
  perRunner: number;
  /** Runners above `min` stop after this long without work. */
  idleMs: number;
  spawn: () => Runner;
}

export interface WorkerPoolStats {
  /** Every runner ever started. */
  started: number;
  /** Started because an invocation found no free runner (what warm capacity is there to avoid). */
  startedOnInvocation: number;
  /** Started ahead of demand by `scaleFor`. */
  startedAhead: number;
  /** Started to replace a runner that died. */
  replaced: number;
  /** Stopped for being idle above `min`. */
  retired: number;
  live: number;
}

/**
 * The runners of one pool. Warm runners are started before any invocation needs them and replaced when they
 * die, so the invocation path only ever picks a runner; a runner is started on that path only when demand
 * outgrew both the warm ones and what `scaleFor` started ahead.
 */
export class WorkerPool {
  private readonly runners: Runner[] = [];
  /** When each runner last became idle; read only while it has no claims. */
  private readonly idleSince = new Map<Runner, number>();
  /** Runners whose `ready` resolved. */
  private readonly up = new Set<Runner>();
  /** Runs handed out per runner, counted when handed out (a runner's own load lags behind its ready). */
  private readonly claims = new Map<Runner, number>();
  private readonly waiters: ((r: Runner) => void)[] = [];
  private reaper: NodeJS.Timeout | undefined;
  private closed = false;
  readonly stats: WorkerPoolStats = {
    started: 0,
    startedOnInvocation: 0,
    startedAhead: 0,
    replaced: 0,
    retired: 0,
    live: 0,
  };

  constructor(private readonly o: WorkerPoolOptions) {
    if (o.idleMs > 0) {
      this.reaper = setInterval(() => this.retireIdle(), Math.max(250, o.idleMs / 4));
      this.reaper.unref();
    }
  }

  /** Starts the warm runners and waits until they can take work. */
  async warm(): Promise<void> {
    while (this.runners.length < this.o.min) this.add('ahead');
    await Promise.all(this.runners.map((r) => r.ready));
  }

  /** Starts runners ahead of demand (queue depth), up to `max`. */
  scaleFor(demand: number): void {
    const want = Math.min(this.o.max, Math.ceil(demand / this.o.perRunner));
    while (!this.closed && this.runners.length < want) this.add('ahead');
  }

  /**
   * A runner with room for one more run: the least loaded ready one, a new one, or the next to free up. A
   * ready runner comes back synchronously (no promise), which keeps a warm dispatch to one event-loop turn.
   */
  acquire(): Runner | Promise<Runner> {
    if (this.closed) return Promise.reject(new Error(`worker pool ${this.o.label} is closed`));
    let best: Runner | undefined;
    for (const r of this.runners)
      if (
        !r.dead &&
        this.claimed(r) < this.o.perRunner &&
        (best === undefined || this.claimed(r) < this.claimed(best))
      )
        best = r;
    if (best) return this.handOut(best);
    if (this.runners.length < this.o.max) return this.handOut(this.add('invocation'));
    return new Promise<Runner>((resolve) => this.waiters.push(resolve));
  }

  private claimed(r: Runner): number {
    return this.claims.get(r) ?? 0;
  }

  private handOut(r: Runner): Runner | Promise<Runner> {
    // Counts stay in the maps at zero and idle times are only read at zero claims: a long-lived Map that
    // keeps gaining and losing its only key reallocates its table each time, which showed in every dispatch.
    this.claims.set(r, this.claimed(r) + 1);
    if (this.up.has(r)) return r;
    return this.whenUp(r);
  }

  private async whenUp(r: Runner): Promise<Runner> {
    try {
      await r.ready;
    } catch (e) {
      this.claims.delete(r);
      throw e;
    }
    return r;
  }

  /** Called when a run on `r` settled, so a waiter can take the room. */
  released(r: Runner): void {
    // A dead runner left (or is leaving) the pool: its count must not come back.
    if (r.dead) return void this.claims.delete(r);
    const left = Math.max(0, this.claimed(r) - 1);
    this.claims.set(r, left);
    const waiter = this.waiters.shift();
    if (waiter) void Promise.resolve(this.handOut(r)).then(waiter);
    else if (left <= 0) this.idleSince.set(r, Date.now());
  }

  get size(): number {
    return this.runners.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reaper) clearInterval(this.reaper);
    await Promise.all(this.runners.splice(0).map((r) => r.close()));
    this.stats.live = 0;
  }

  private add(why: 'ahead' | 'invocation' | 'replacement'): Runner {
    const r = this.o.spawn();
    this.runners.push(r);
    this.stats.started++;
    if (why === 'invocation') this.stats.startedOnInvocation++;
    else if (why === 'ahead') this.stats.startedAhead++;
    else this.stats.replaced++;
    this.stats.live = this.runners.length;
    r.onDeath(() => this.remove(r));
    r.ready.then(
      () => {
        this.up.add(r);
        if (this.claimed(r) === 0) this.idleSince.set(r, Date.now());
        // A runner that came up while someone waited serves them first.
        if (this.waiters.length > 0 && !r.dead && this.claimed(r) < this.o.perRunner)
          void Promise.resolve(this.handOut(r)).then(this.waiters.shift());
      },
      () => this.remove(r),
    );
    return r;
  }

  private remove(r: Runner): void {
    const i = this.runners.indexOf(r);
    if (i < 0) return;
    this.runners.splice(i, 1);
    this.idleSince.delete(r);
    this.claims.delete(r);
    this.up.delete(r);
    this.stats.live = this.runners.length;
    if (this.closed) return;
    // Keep the warm capacity, and keep serving anyone waiting for a runner.
    if (this.runners.length < this.o.min || this.waiters.length > 0) this.add('replacement');
  }

  private retireIdle(): void {
    const now = Date.now();
    for (const [r, since] of [...this.idleSince]) {
      if (this.runners.length <= this.o.min) return;
      if (this.claimed(r) === 0 && now - since >= this.o.idleMs) {
        // Out of the pool before it closes: remove() on its death then finds it gone and does nothing.
        this.remove(r);
        this.stats.retired++;
        void r.close();
      }
    }
  }
}
