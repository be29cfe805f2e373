/**
 * Glossary — the words Cosmos code uses, and what they mean (Netflix's names in brackets).
 *
 * - service: unit of ownership and deployment; has operations, workflows, functions, an owner, and the
 *   services it `calls`.
 * - operation: one API entry point of a service, with input/output schemas. [Optimus]
 * - execution: one run of a workflow, started by an operation call or by another execution. [Plato]
 * - rule: match / action / reaction / error over an execution's state.
 * - function: a stateless handler run by workers in a pool. [Stratum]
 * - invocation: one call of a function; travels as a queue message.
 * - queue: a named, durable priority queue. Lower priority numbers run first. [Timestone]
 * - message: one item in a queue; moves through the states below.
 * - lease: the right, for a limited time, to work on a message; extended by heartbeats, lost on expiry.
 * - attempt: one lease of a message. Attempts are spent when a lease is taken, so an expired lease
 *   has cost one; a message with none left becomes `errored`.
 * - exclusivity key: on an exclusive queue, at most one message per key value is leased at a time.
 * - store: where all durable state lives — SQLite (embedded) or PostgreSQL (distributed).
 * - node: a process hosting platform roles (API, engine, workers).
 */

/** Message lifecycle: invisible (delayed) → pending → running (leased) → completed | canceled | errored. */
export const MESSAGE_STATES = [
  'invisible',
  'pending',
  'running',
  'completed',
  'canceled',
  'errored',
] as const;
export type MessageState = (typeof MESSAGE_STATES)[number];

export const FINISHED_STATES: readonly MessageState[] = ['completed', 'canceled', 'errored'];

/** Up to four string pairs, usable as dequeue filters. */
export type Metadata = Record<string, string>;

/** Per-queue configuration, stored in the database so every node sees the same. */
export interface QueueConfig {
  /** How long a dequeue leases a message unless the consumer asks otherwise. */
  leaseMs: number;
  /** Delay applied to every enqueued message unless the message sets its own. */
  delayMs: number;
  /** Leases a message may take before it becomes `errored`. */
  maxAttempts: number;
  /** How long finished messages are kept before garbage collection. */
  retentionMs: number;
  /** Refuse new messages (they are rejected with `queue_enqueue_paused`, not dropped). */
  enqueuePaused: boolean;
  /** Stop handing out messages; everything queued stays queued. */
  dequeuePaused: boolean;
  /** At most one leased message per exclusivity key value. */
  exclusive: boolean;
}

export interface QueueInfo extends QueueConfig {
  name: string;
  createdAt: number;
  updatedAt: number;
}

export interface EnqueueOptions {
  /** Lower runs first. Default: the enqueue time in epoch milliseconds. */
  priority?: number;
  /** Keep the message invisible for this long. Default: the queue's `delayMs`. */
  delayMs?: number;
  /** A second enqueue with the same key on the same queue returns the first message. */
  idempotencyKey?: string;
  metadata?: Metadata;
  /** Required on exclusive queues' keyed messages; refused on non-exclusive queues. */
  exclusivityKey?: string;
  /** Default: the queue's `maxAttempts`. */
  maxAttempts?: number;
}

export interface EnqueueInput<P = unknown> extends EnqueueOptions {
  queue: string;
  payload: P;
}

export interface EnqueueResult {
  id: number;
  /** False when an idempotency key matched an existing message. */
  created: boolean;
  state: MessageState;
}

export interface Message<P = unknown> {
  id: number;
  queue: string;
  state: MessageState;
  priority: number;
  payload: P;
  metadata: Metadata;
  idempotencyKey: string | null;
  exclusivityKey: string | null;
  attempts: number;
  maxAttempts: number;
  createdAt: number;
  visibleAt: number;
  leasedAt: number | null;
  leaseExpiresAt: number | null;
  finishedAt: number | null;
  lastError: string | null;
}

/** Proof of a lease: both the id and the token must match for complete / fail / extend / release. */
export interface LeaseRef {
  id: number;
  token: string;
}

export interface LeasedMessage<P = unknown> extends Message<P> {
  lease: LeaseRef;
}

export interface DequeueRequest {
  queue: string;
  /** Batch size. */
  max: number;
  /** Default: the queue's `leaseMs`. */
  leaseMs?: number;
  /** Only messages whose metadata contains every pair. */
  filter?: Metadata;
}

export interface FailOptions {
  /** Wait this long before the next attempt (the message is invisible meanwhile). */
  retryDelayMs?: number;
  /** No further attempts: the message becomes errored now (e.g. its input can never succeed). */
  final?: boolean;
}

export type StateCounts = Record<MessageState, number>;

/** Wall clock in epoch milliseconds; injectable so tests can move time. */
export type Clock = () => number;
