import type { Wakeups } from '../queue/wakeups.js';
import type {
  DequeueRequest,
  EnqueueResult,
  LeaseRef,
  LeasedMessage,
  Message,
  Metadata,
  MessageState,
  QueueConfig,
  QueueInfo,
  StateCounts,
} from '../types.js';

/**
 * The storage contract. The SQLite and PostgreSQL implementations are held to one conformance suite
 * (test/conformance), so everything above this line is dialect-free. Payloads cross this boundary already
 * serialized: the queue facade owns validation and (de)serialization.
 */
export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  readonly queue: QueueStore;
  /** Signals that messages may have become available; fed by local commits and, on PostgreSQL, by NOTIFY. */
  readonly wakeups: Wakeups;
  /** The highest migration version applied. */
  schemaVersion(): Promise<number>;
  /** A cheap round trip, for readiness checks. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** A message as the facade hands it to the store. Nulls mean "use the queue's configuration". */
export interface NewMessage {
  queue: string;
  payload: string;
  priority: number;
  delayMs: number | null;
  idempotencyKey: string | null;
  metadata: Metadata | null;
  exclusivityKey: string | null;
  maxAttempts: number | null;
}

export interface QueueDefinition {
  name: string;
  exclusive: boolean;
}

export interface FailItem {
  lease: LeaseRef;
  error: string;
  retryDelayMs: number;
  /** Errored now, whatever attempts are left (the failure cannot succeed on retry). */
  final?: boolean;
}

export interface SettleReport {
  promoted: number;
  requeued: number;
  errored: number;
}

export interface QueueStore {
  /** Creates the queues that do not exist yet with the defaults; existing queues are left unchanged. */
  ensureQueues(queues: QueueDefinition[], defaults: QueueConfig, now: number): Promise<void>;
  /** Creates the queue if needed, then applies the patch. */
  configureQueue(
    name: string,
    patch: Partial<QueueConfig>,
    defaults: QueueConfig,
    now: number,
  ): Promise<QueueInfo>;
  getQueue(name: string): Promise<QueueInfo | undefined>;
  listQueues(): Promise<QueueInfo[]>;

  /** All or nothing: a paused or non-exclusive queue refuses the whole batch. Results are in input order. */
  enqueue(messages: NewMessage[], now: number): Promise<EnqueueResult[]>;
  /** Leases up to `max` messages in priority order; the lease token is chosen by the caller. */
  dequeue(request: DequeueRequest & { token: string }, now: number): Promise<LeasedMessage<string>[]>;
  /** Returns the ids whose lease was still held and are now completed. */
  complete(leases: LeaseRef[], now: number): Promise<number[]>;
  /** Spends the attempt: back to pending/invisible, or errored when none are left. */
  fail(items: FailItem[], now: number): Promise<{ id: number; state: MessageState }[]>;
  /** Gives leases back without spending the attempt (graceful drain). */
  release(leases: LeaseRef[], delayMs: number, now: number): Promise<number[]>;
  extend(leases: LeaseRef[], leaseMs: number, now: number): Promise<{ id: number; leaseExpiresAt: number }[]>;
  /** Cancels messages that are not finished yet; returns the ids canceled. */
  cancel(ids: number[], now: number): Promise<number[]>;
  get(id: number): Promise<Message<string> | undefined>;
  counts(queue: string): Promise<StateCounts>;

  /**
   * Moves what time has made due: invisible messages whose delay passed become pending; expired leases go
   * back to pending while attempts remain, otherwise errored.
   */
  settle(now: number): Promise<SettleReport>;
  /** Deletes finished messages older than their queue's retention; at most `limit` per call. */
  gc(now: number, limit: number): Promise<number>;
  /** The earliest moment something on this queue becomes due without a new enqueue, if any. */
  nextDueAt(queue: string): Promise<number | null>;
}

/** An idempotency conflict whose existing row was collected before it could be read: enqueue again. */
export class RetryEnqueue extends Error {}
