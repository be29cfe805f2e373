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
  readonly workflow: WorkflowStore;
  readonly services: ServiceStore;
  readonly cluster: ClusterStore;
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
  /** Ready messages by priority class: how many, and since when the oldest has been ready (epoch ms). */
  pendingByClass(queue: string): Promise<PendingClass[]>;

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

/** An execution as stored: the document and the columns that queries filter on. */
export interface ExecutionRow {
  id: string;
  workflow: string;
  version: string;
  status: string;
  priority: number;
  parentId: string | null;
  /** Steps committed; a step writes seq + 1 only where seq is still what it read. */
  seq: number;
  doc: string;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
  /** The node running some of the execution's invocations itself (not as queue messages), and until when. */
  owner: string | null;
  ownerUntil: number | null;
}

/** The trace events one commit made durable, as a JSON array (see TraceEvent). */
export interface TraceRow {
  executionId: string;
  /** The execution's commit sequence. */
  seq: number;
  at: number;
  events: string;
}

/**
 * One workflow step as it commits (SPEC §2, the transactional outbox): the execution's new document, its
 * trace lines and the messages it sends, all or nothing.
 */
export interface StepWrite {
  /** The execution after the step; `row.seq` is the sequence read plus one, and 1 creates the execution. */
  row: ExecutionRow;
  /**
   * The step runs none of the execution's local invocations itself, but some are still out (another node
   * runs them, or ran them and died): the row keeps its owner and owner_until, so this step neither takes
   * the work over nor hides a lapse from the sweep. A row without an owner takes `row.owner` and
   * `row.ownerUntil` instead.
   */
  keepOwner?: boolean;
  /** Its trace events, a JSON array; null when it has none. */
  trace: string | null;
  /** Messages it sends: queued invocations, events, timers. */
  enqueue: NewMessage[];
  /** Signal messages the step applies, recorded so a redelivery is recognised. */
  signals: number[];
  /**
   * Text the list's search finds the execution by (id, workflow, input; output and error when it ends),
   * given only by the steps that start or finish it: searching stays off the per-step path.
   */
  search?: string;
}

export type StepOutcome =
  | { ok: true }
  /** Another evaluator committed first (or the execution exists already): re-read and decide again. */
  | { ok: false; reason: 'conflict' };

export interface ExecutionFilter {
  workflow?: string;
  /** Executions of a service's operations (workflows named `service.operation`). */
  service?: string;
  /** Text search: an execution id, or text in its id, workflow, input, output or error (a substring). */
  q?: string;
  status?: string;
  parentId?: string;
  limit: number;
  /** Cursor: rows created before this (created_at, id). */
  before?: { createdAt: number; id: string };
}

export interface WorkflowStore {
  /** Each step commits or conflicts alone; steps given together share one commit where the store can. */
  commitSteps(steps: StepWrite[], now: number): Promise<StepOutcome[]>;
  /**
   * Moves up to `limit` of the oldest search rows from the backlog, where commits append them, into the
   * trigram index; returns how many it moved. Searches read the backlog too, so this only keeps them fast.
   * Safe to run on several nodes at once (the search-index duty runs it on one).
   */
  indexSearch(limit: number): Promise<number>;
  /** Extends `owner`'s hold on executions it still owns. */
  renewOwnership(ids: string[], owner: string, until: number): Promise<void>;
  /**
   * Running executions whose owner stopped renewing before `now`, this node's included: an owner renews
   * only what it runs, so a lapsed row of its own holds invocations it does not run.
   */
  lapsedOwnership(now: number, limit: number): Promise<string[]>;
  getExecutions(ids: string[]): Promise<ExecutionRow[]>;
  listExecutions(filter: ExecutionFilter): Promise<ExecutionRow[]>;
  /** How many executions there are in each status. */
  countByStatus(): Promise<Record<string, number>>;
  /** Open executions of a workflow on any version but `version` (for re-evaluation on upgrade). */
  openOnOtherVersions(workflow: string, version: string): Promise<{ id: string; version: string }[]>;
  signalApplied(executionId: string, messageId: number): Promise<boolean>;
  trace(executionId: string): Promise<TraceRow[]>;
  /** Ids of messages by idempotency key on one queue (to withdraw an execution's requests). */
  messageIds(queue: string, keys: string[]): Promise<number[]>;
}

/** A deployed service as the store keeps it (see migration services). */
export interface ServiceRecord {
  name: string;
  owner: { team: string; contact?: string };
  description?: string;
  calls: string[];
  secrets: string[];
  /** The deployed description (operations, functions, versions), JSON-serializable. */
  definition: Record<string, unknown>;
  deployedAt: number;
}

/** Services as data: owners and the call graph, for the API, the UI and vulnerability mapping. */
export interface ServiceStore {
  /** Writes the records (replacing what a service declared before, its calls included), in one transaction. */
  save(records: ServiceRecord[]): Promise<void>;
  list(): Promise<ServiceRecord[]>;
  /** Every service that calls `name`, directly or through others, nearest first. */
  callersOf(name: string): Promise<{ name: string; depth: number }[]>;
}

/** A running node as the registry holds it (see src/cluster). */
export interface NodeRecord {
  /** Unique per process start. */
  id: string;
  /** Chosen by the operator (`--name`), else host and pid. */
  name: string;
  roles: string[];
  /** Pools this node runs functions for (workers); empty for nodes without the worker role. */
  pools: string[];
  /** Function slots (workers); 0 without the worker role. */
  slots: number;
  host: string;
  pid: number;
  /** The Cosmos version the node runs. */
  version: string;
  /** Where its HTTP edge listens (API role), else null. */
  url: string | null;
  status: 'up' | 'draining' | 'stopped';
  heartbeatMs: number;
  /** Background duties this node holds right now. */
  duties: string[];
  startedAt: number;
  heartbeatAt: number;
}

/**
 * Cluster coordination: the node registry, and the locks that let a background duty run on exactly one node.
 * Everything here lives in the database, so no node holds state another needs.
 */
export interface ClusterStore {
  /** Writes the node's row (insert on first beat, then status, duties and heartbeat time). */
  beat(node: NodeRecord): Promise<void>;
  listNodes(): Promise<NodeRecord[]>;
  /** Deletes rows whose last heartbeat is older than `before`; returns how many. */
  pruneNodes(before: number): Promise<number>;
  /** A holder of duty locks for one node; each node opens one. */
  dutyLocks(): DutyLocks;
}

/**
 * Exclusive, self-releasing locks on background duties. On PostgreSQL a session advisory lock on a dedicated
 * connection: when the holder dies, or loses its connection, the lock is gone and another node takes the duty.
 * On SQLite (one machine) every holder is granted: duties are idempotent statements, safe to run twice.
 */
export interface DutyLocks {
  /** True when this holder has the duty (taking it if free). False, not an error, when the database is away. */
  hold(duty: string): Promise<boolean>;
  /** Duties held now. */
  held(): string[];
  /** Lets every duty go (graceful stop), and closes the connection. */
  close(): Promise<void>;
}

/** Ready messages of one priority class of a queue (see PRIORITY_CLASSES). */
export interface PendingClass {
  class: string;
  n: number;
  /** When the longest-waiting of them became ready (epoch ms). */
  oldest: number;
}
