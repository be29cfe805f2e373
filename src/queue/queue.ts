import { randomUUID } from 'node:crypto';
import { resolveQueueOptions, type QueueOptions, type QueueOptionsInput } from '../config.js';
import { RetryEnqueue, type NewMessage, type PendingClass, type Store } from '../store/store.js';
import type {
  Clock,
  DequeueRequest,
  EnqueueInput,
  EnqueueOptions,
  EnqueueResult,
  FailOptions,
  LeaseRef,
  LeasedMessage,
  Message,
  MessageState,
  QueueConfig,
  QueueInfo,
  StateCounts,
} from '../types.js';
import { Batcher } from './batcher.js';
import { Consumer, type Handler, type WorkOptions } from './consumer.js';
import { checkConfigPatch, checkDequeue, checkQueueName, toNewMessage } from './validate.js';

export interface MaintenanceReport {
  promoted: number;
  requeued: number;
  errored: number;
  collected: number;
}

function parse<P>(m: Message<string>): Message<P> {
  return { ...m, payload: JSON.parse(m.payload) as P };
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return typeof error === 'string' ? error : JSON.stringify(error);
}

/**
 * The durable priority queue (SPEC §5): the facade every layer talks to. It validates and serializes,
 * auto-creates queues, batches completions into shared commits, and turns store signals into waits that
 * wake without polling delay.
 */
export class Queue {
  readonly options: QueueOptions;
  private readonly known = new Set<string>();
  private readonly completions: Batcher<LeaseRef, boolean>;
  private readonly consumers = new Set<Consumer<never>>();
  private maintenanceTimer: NodeJS.Timeout | undefined;
  private lastGc = 0;

  constructor(
    readonly store: Store,
    options: QueueOptionsInput = {},
    readonly clock: Clock = Date.now,
  ) {
    this.options = resolveQueueOptions(options);
    this.completions = new Batcher(async (leases) => {
      const done = new Set(await store.queue.complete(leases, this.clock()));
      return leases.map((l) => done.has(l.id));
    });
  }

  enqueue<P>(queue: string, payload: P, options: EnqueueOptions = {}): Promise<EnqueueResult> {
    return this.enqueueMany([{ ...options, queue, payload }]).then((r) => r[0]!);
  }

  /** All or nothing. A key repeated within the batch resolves to the first message (created: false). */
  async enqueueMany(inputs: EnqueueInput[]): Promise<EnqueueResult[]> {
    if (inputs.length === 0) return [];
    const now = this.clock();
    const all = inputs.map((i) => toNewMessage(i, now, this.options.maxPayloadBytes));
    const firstOfKey = new Map<string, number>();
    const unique: NewMessage[] = [];
    const slot = all.map((m) => {
      if (m.idempotencyKey !== null) {
        const k = `${m.queue}\u001f${m.idempotencyKey}`;
        const seen = firstOfKey.get(k);
        if (seen !== undefined) return { index: seen, duplicate: true };
        firstOfKey.set(k, unique.length);
      }
      unique.push(m);
      return { index: unique.length - 1, duplicate: false };
    });
    await this.ensureQueues(unique);
    let results: EnqueueResult[] | undefined;
    for (let attempt = 0; !results; attempt++) {
      try {
        results = await this.store.queue.enqueue(unique, now);
      } catch (error) {
        if (!(error instanceof RetryEnqueue) || attempt >= 3) throw error;
      }
    }
    const out = results;
    return slot.map(({ index, duplicate }) => (duplicate ? { ...out[index]!, created: false } : out[index]!));
  }

  async dequeue<P = unknown>(request: DequeueRequest): Promise<LeasedMessage<P>[]> {
    checkDequeue(request);
    const rows = await this.store.queue.dequeue({ ...request, token: randomUUID() }, this.clock());
    // The store hands over fresh objects, so the payload is parsed in place rather than copied.
    for (const m of rows) (m as Message<unknown>).payload = JSON.parse(m.payload);
    return rows as unknown as LeasedMessage<P>[];
  }

  /** Batched with every other completion of this turn of the event loop. False: the lease was lost. */
  complete(lease: LeaseRef): Promise<boolean> {
    return this.completions.add({ id: lease.id, token: lease.token });
  }

  async completeMany(leases: LeaseRef[]): Promise<number[]> {
    return this.store.queue.complete(leases, this.clock());
  }

  /** Returns the message's new state, or undefined when the lease was no longer held. */
  async fail(lease: LeaseRef, error: unknown, options: FailOptions = {}): Promise<MessageState | undefined> {
    const [row] = await this.store.queue.fail(
      [
        {
          lease,
          error: describe(error),
          retryDelayMs: options.retryDelayMs ?? 0,
          final: options.final ?? false,
        },
      ],
      this.clock(),
    );
    return row?.state;
  }

  /** Gives leases back without spending their attempt. */
  release(leases: LeaseRef[], options: { delayMs?: number } = {}): Promise<number[]> {
    return this.store.queue.release(leases, options.delayMs ?? 0, this.clock());
  }

  /** Extends leases by `leaseMs` from now; returns the ids still held. */
  async extend(leases: LeaseRef[], leaseMs: number): Promise<number[]> {
    return (await this.store.queue.extend(leases, leaseMs, this.clock())).map((r) => r.id);
  }

  cancel(ids: number[]): Promise<number[]> {
    return this.store.queue.cancel(ids, this.clock());
  }

  async get<P = unknown>(id: number): Promise<Message<P> | undefined> {
    const m = await this.store.queue.get(id);
    return m && parse<P>(m);
  }

  counts(queue: string): Promise<StateCounts> {
    return this.store.queue.counts(checkQueueName(queue));
  }

  /** Ready messages by priority class, with the time the oldest of each became ready. */
  pendingByClass(queue: string): Promise<PendingClass[]> {
    return this.store.queue.pendingByClass(checkQueueName(queue));
  }

  /** When something on the queue next comes due by itself (a delayed message, a lease expiry), if ever. */
  nextDueAt(queue: string): Promise<number | null> {
    return this.store.queue.nextDueAt(checkQueueName(queue));
  }

  async configure(queue: string, patch: Partial<QueueConfig>): Promise<QueueInfo> {
    const info = await this.store.queue.configureQueue(
      checkQueueName(queue),
      checkConfigPatch(patch),
      this.options.defaults,
      this.clock(),
    );
    this.known.add(queue);
    return info;
  }

  getQueue(queue: string): Promise<QueueInfo | undefined> {
    return this.store.queue.getQueue(queue);
  }

  listQueues(): Promise<QueueInfo[]> {
    return this.store.queue.listQueues();
  }

  /** Promotes due delayed messages, reaps expired leases, and collects old finished messages. */
  async maintain(options: { gc?: boolean } = {}): Promise<MaintenanceReport> {
    const now = this.clock();
    const { promoted, requeued, errored } = await this.store.queue.settle(now);
    let collected = 0;
    if (options.gc ?? true) {
      let n: number;
      do {
        n = await this.store.queue.gc(now, this.options.gcBatchSize);
        collected += n;
      } while (n >= this.options.gcBatchSize);
    }
    return { promoted, requeued, errored, collected };
  }

  /**
   * One round of the periodic maintenance: settles every round, collects garbage once a minute. What
   * `startMaintenance` runs on its timer, and what a cluster node runs as its queue-maintenance duty.
   */
  maintenanceRound(): Promise<MaintenanceReport> {
    const now = this.clock();
    const gc = now - this.lastGc >= 60_000;
    if (gc) this.lastGc = now;
    return this.maintain({ gc });
  }

  /** Runs maintenance every `maintenanceIntervalMs` (garbage collection once a minute) until close(). */
  startMaintenance(onError: (error: unknown) => void = () => undefined): void {
    if (this.maintenanceTimer) return;
    const tick = (): void => {
      this.maintenanceRound()
        .catch(onError)
        .finally(() => {
          if (this.maintenanceTimer)
            this.maintenanceTimer = setTimeout(tick, this.options.maintenanceIntervalMs);
        });
    };
    this.maintenanceTimer = setTimeout(tick, this.options.maintenanceIntervalMs);
  }

  /**
   * Waits until work may be available on the queue: a wake-up signal, the next delayed message or lease
   * expiry coming due, the poll interval, or the abort signal — whichever is first.
   */
  async waitForWork(
    queue: string,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<boolean> {
    let wait = Math.min(options.timeoutMs ?? this.options.pollIntervalMs, this.options.pollIntervalMs);
    const due = await this.store.queue.nextDueAt(queue);
    if (due !== null) wait = Math.min(wait, Math.max(0, due - this.clock()) + 1);
    return this.store.wakeups.wait(queue, wait, options.signal);
  }

  /** Starts a consumer loop; stop it with `consumer.stop()` (or `queue.close()`). */
  work<P = unknown>(queue: string, handler: Handler<P>, options: WorkOptions = {}): Consumer<P> {
    const consumer = new Consumer<P>(this, checkQueueName(queue), handler, options);
    this.consumers.add(consumer);
    consumer.onStop(() => this.consumers.delete(consumer));
    consumer.start();
    return consumer;
  }

  /** Stops consumers and maintenance and flushes pending completions. The store stays open. */
  async close(): Promise<void> {
    const timer = this.maintenanceTimer;
    this.maintenanceTimer = undefined;
    if (timer) clearTimeout(timer);
    await Promise.all([...this.consumers].map((c) => c.stop()));
    await this.completions.idle();
  }

  /**
   * Validated, serialized messages whose queues exist, for a caller that writes them in its own commit (the
   * workflow engine's outbox). Queues are created here, before that commit, as enqueue() would.
   */
  async outbox(inputs: EnqueueInput[]): Promise<NewMessage[]> {
    const now = this.clock();
    const messages = inputs.map((i) => toNewMessage(i, now, this.options.maxPayloadBytes));
    await this.ensureQueues(messages);
    return messages;
  }

  private async ensureQueues(messages: NewMessage[]): Promise<void> {
    const missing = new Map<string, boolean>();
    for (const m of messages) {
      if (this.known.has(m.queue)) continue;
      missing.set(m.queue, (missing.get(m.queue) ?? false) || m.exclusivityKey !== null);
    }
    if (missing.size === 0) return;
    await this.store.queue.ensureQueues(
      [...missing].map(([name, exclusive]) => ({ name, exclusive })),
      this.options.defaults,
      this.clock(),
    );
    for (const name of missing.keys()) this.known.add(name);
  }
}
