import type { LeasedMessage, EnqueueInput } from '../types.js';
import type { Execution, ExecutionEvent, TraceEvent } from './execution.js';

/** A local invocation's attempt running on this node. */
export interface DirectRun {
  abort: () => void;
}

/** What the next commit of one execution carries. */
export interface Batch {
  trace: TraceEvent[];
  enqueue: EnqueueInput[];
  signals: number[];
  /** Event messages whose effect this commit makes durable: completed after it lands. */
  acks: LeasedMessage<unknown>[];
  /** Events applied since the last commit, replayed on a fresh read if the commit conflicts. */
  events: { event: ExecutionEvent; ack?: LeasedMessage<unknown>; signal?: number }[];
  /** Queued requests of finished executions, canceled once the finish is committed. */
  withdraw: { queue: string; key: string }[];
  waiters: { resolve: () => void; reject: (e: unknown) => void }[];
}

export function emptyBatch(): Batch {
  return {
    trace: [],
    enqueue: [],
    signals: [],
    acks: [],
    events: [],
    withdraw: [],
    waiters: [],
  };
}

export function batchIsEmpty(b: Batch): boolean {
  return b.events.length === 0 && b.acks.length === 0 && b.enqueue.length === 0 && b.signals.length === 0;
}

/**
 * An execution this node is moving: its newest document (possibly ahead of the store) and what the next
 * commit carries. While one commit is under way, later steps run ahead in memory and commit together when
 * it lands, so a chain of quick steps costs one commit per round trip to the store, not one per step.
 */
export class LiveExecution {
  batch: Batch = emptyBatch();
  committing = false;
  /** The batch of the commit under way. */
  inflight: Batch | undefined;
  /** A batch waiting for local invocations to share its commit (see WorkflowEngine.mayWait). */
  holdTimer: NodeJS.Timeout | undefined;
  holdExpired = false;
  readonly directs = new Map<string, DirectRun>();

  constructor(
    public doc: Execution,
    /** Commits of this execution in the store (the row's `seq`). */
    public committed: number,
  ) {}

  get idle(): boolean {
    return !this.committing && batchIsEmpty(this.batch) && this.directs.size === 0;
  }

  /** Resolves once everything applied so far is durable. */
  durable(): Promise<void> {
    const empty = batchIsEmpty(this.batch);
    if (empty && !this.inflight) return Promise.resolve();
    // With nothing new since, the commit under way is the one that makes it all durable.
    const b = empty ? this.inflight! : this.batch;
    return new Promise((resolve, reject) => b.waiters.push({ resolve, reject }));
  }
}
