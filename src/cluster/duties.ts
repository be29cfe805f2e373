import type { Logger } from '../observability/logger.js';
import type { DutyLocks } from '../store/store.js';

/** A background job that must run on one node of the cluster at a time. */
export interface Duty {
  name: string;
  /** Pause between two runs on the holder, and between two tries to take it elsewhere. */
  everyMs: number;
  run: () => Promise<unknown>;
}

/**
 * Runs the node's share of the cluster's background duties (timers and delayed messages coming due, lapsed
 * leases, recovery of executions whose owner died, garbage collection, the node registry's pruning). Every node
 * competes for every duty; a duty runs only on the node holding its lock, and moves to another node within
 * one round once its holder dies. The duties are idempotent statements, so a holder that lost its lock without
 * knowing yet (a partition) running one more round does no harm.
 */
export class Duties {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly running = new Set<Promise<boolean>>();
  private readonly failing = new Set<string>();
  private stopped = false;

  constructor(
    private readonly locks: DutyLocks,
    private readonly duties: readonly Duty[],
    private readonly log: Logger,
    private readonly contendMs = 1_000,
  ) {}

  start(): void {
    for (const d of this.duties) this.schedule(d, 0);
  }

  /** The duties this node holds now. */
  held(): string[] {
    return this.locks.held();
  }

  private schedule(d: Duty, ms: number): void {
    if (this.stopped) return;
    const t = setTimeout(() => void this.round(d), ms);
    t.unref();
    this.timers.set(d.name, t);
  }

  private async round(d: Duty): Promise<void> {
    const run = (async () => {
      if (!(await this.locks.hold(d.name))) return false;
      try {
        await d.run();
        if (this.failing.delete(d.name)) this.log.info({ duty: d.name }, 'background duty recovered');
      } catch (error) {
        // Once per outage, not once per round.
        if (!this.failing.has(d.name)) this.log.warn({ err: error, duty: d.name }, 'background duty failed');
        this.failing.add(d.name);
      }
      return true;
    })();
    this.running.add(run);
    const mine = await run;
    this.running.delete(run);
    // A node without the duty asks again soon whatever the duty's own pace, so a dead holder's duty moves
    // within `contendMs`, not within one (possibly long) round.
    this.schedule(d, mine ? d.everyMs : Math.min(d.everyMs, this.contendMs));
  }

  /** Stops taking rounds, waits for the ones under way, and lets every lock go. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.running]);
    await this.locks.close();
  }
}
