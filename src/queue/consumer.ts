import type { LeasedMessage, Metadata } from '../types.js';
import type { Queue } from './queue.js';

export interface WorkContext {
  /** Aborted when the lease is lost (expired, canceled) or the consumer stops without draining. */
  signal: AbortSignal;
}

export type Handler<P> = (message: LeasedMessage<P>, ctx: WorkContext) => unknown;

export interface WorkOptions {
  /** Messages leased per dequeue. Default 10. */
  batchSize?: number;
  /** Messages in flight at once. Default 2 × batchSize, so the next batch is fetched while one finishes. */
  concurrency?: number;
  /** Default: the queue's lease. Leases are extended every leaseMs / 3 while a handler runs. */
  leaseMs?: number;
  filter?: Metadata;
  /** Delay before a failed message's next attempt, from the attempt number. Default none. */
  retryDelayMs?: (attempt: number) => number;
  /** Called with errors the loop survives (store unavailable, and so on). */
  onError?: (error: unknown) => void;
}

interface InFlight {
  message: LeasedMessage<unknown>;
  /** Created only when a handler reads its signal or the lease must be aborted: most never need one. */
  controller: AbortController | undefined;
  aborted: boolean;
}

function abort(entry: InFlight): void {
  entry.aborted = true;
  entry.controller?.abort();
}

/**
 * A consumer loop: dequeue in batches, run handlers concurrently, complete or fail each, keep leases alive
 * with heartbeats, and sleep on the queue's wake-up signal when there is nothing to do.
 */
export class Consumer<P> {
  readonly stats = { completed: 0, failed: 0, leaseLost: 0, dequeues: 0 };
  private readonly inFlight = new Map<number, InFlight>();
  private readonly batchSize: number;
  private readonly concurrency: number;
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;
  private slotFreed: (() => void) | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly stopListeners: (() => void)[] = [];

  constructor(
    private readonly queue: Queue,
    readonly name: string,
    private readonly handler: Handler<P>,
    private readonly options: WorkOptions,
  ) {
    this.batchSize = options.batchSize ?? 10;
    this.concurrency = Math.max(options.concurrency ?? this.batchSize * 2, 1);
  }

  start(): void {
    this.loop ??= this.run();
  }

  onStop(fn: () => void): void {
    this.stopListeners.push(fn);
  }

  /**
   * Stops taking work. By default waits for in-flight handlers to finish; with `release: true` their leases
   * are handed back instead (without spending the attempt) and their signals aborted.
   */
  async stop(options: { release?: boolean } = {}): Promise<void> {
    this.stopping.abort();
    this.slotFreed?.();
    if (options.release && this.inFlight.size > 0) {
      const items = [...this.inFlight.values()];
      items.forEach(abort);
      await this.queue.release(items.map((i) => i.message.lease)).catch(this.report);
    }
    await this.loop;
    while (this.inFlight.size > 0) await new Promise<void>((r) => (this.slotFreed = r));
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.stopListeners.forEach((fn) => fn());
  }

  private readonly report = (error: unknown): void => this.options.onError?.(error);

  private async run(): Promise<void> {
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      const free = this.concurrency - this.inFlight.size;
      if (free <= 0) {
        await new Promise<void>((r) => (this.slotFreed = r));
        continue;
      }
      let batch: LeasedMessage<P>[];
      try {
        batch = await this.queue.dequeue<P>({
          queue: this.name,
          max: Math.min(this.batchSize, free),
          ...(this.options.leaseMs !== undefined && { leaseMs: this.options.leaseMs }),
          ...(this.options.filter !== undefined && { filter: this.options.filter }),
        });
        this.stats.dequeues++;
      } catch (error) {
        this.report(error);
        await this.queue.waitForWork(this.name, { signal }).catch(() => undefined);
        continue;
      }
      if (batch.length === 0) {
        await this.queue.waitForWork(this.name, { signal }).catch(this.report);
        continue;
      }
      this.ensureHeartbeat(batch[0]!);
      for (const message of batch) this.execute(message);
    }
  }

  private execute(message: LeasedMessage<P>): void {
    const entry: InFlight = { message, controller: undefined, aborted: false };
    this.inFlight.set(message.id, entry);
    const ctx: WorkContext = {
      get signal() {
        if (!entry.controller) {
          entry.controller = new AbortController();
          if (entry.aborted) entry.controller.abort();
        }
        return entry.controller.signal;
      },
    };
    const settle = async (): Promise<void> => {
      try {
        await this.handler(message, ctx);
        if (await this.queue.complete(message.lease)) this.stats.completed++;
        else this.stats.leaseLost++;
      } catch (error) {
        if (entry.aborted) return;
        const retryDelayMs = this.options.retryDelayMs?.(message.attempts) ?? 0;
        const state = await this.queue.fail(message.lease, error, { retryDelayMs });
        if (state === undefined) this.stats.leaseLost++;
        else this.stats.failed++;
      }
    };
    settle()
      .catch(this.report)
      .finally(() => {
        this.inFlight.delete(message.id);
        const wake = this.slotFreed;
        this.slotFreed = undefined;
        wake?.();
      });
  }

  private ensureHeartbeat(sample: LeasedMessage<P>): void {
    if (this.heartbeat || sample.leaseExpiresAt === null || sample.leasedAt === null) return;
    const leaseMs = sample.leaseExpiresAt - sample.leasedAt;
    this.heartbeat = setInterval(
      () => {
        const items = [...this.inFlight.values()];
        if (items.length === 0) return;
        this.queue
          .extend(
            items.map((i) => i.message.lease),
            leaseMs,
          )
          .then((held) => {
            const kept = new Set(held);
            for (const i of items) if (!kept.has(i.message.id) && this.inFlight.has(i.message.id)) abort(i);
          }, this.report);
      },
      Math.max(10, Math.floor(leaseMs / 3)),
    );
  }
}
