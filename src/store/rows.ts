import {
  MESSAGE_STATES,
  type Message,
  type MessageState,
  type Metadata,
  type QueueInfo,
  type StateCounts,
} from '../types.js';
import type { ExecutionFilter, ExecutionRow, TraceRow } from './store.js';

/** A `queues` row as both dialects return it (SQLite gives 0/1 for booleans, pg gives strings for bigint). */
export interface QueueRow {
  name: string;
  lease_ms: number | string;
  delay_ms: number | string;
  max_attempts: number | string;
  retention_ms: number | string;
  enqueue_paused: boolean | number;
  dequeue_paused: boolean | number;
  exclusive: boolean | number;
  created_at: number | string;
  updated_at: number | string;
}

export function queueRowToInfo(r: QueueRow): QueueInfo {
  return {
    name: r.name,
    leaseMs: Number(r.lease_ms),
    delayMs: Number(r.delay_ms),
    maxAttempts: Number(r.max_attempts),
    retentionMs: Number(r.retention_ms),
    enqueuePaused: Boolean(r.enqueue_paused),
    dequeuePaused: Boolean(r.dequeue_paused),
    exclusive: Boolean(r.exclusive),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

export function emptyCounts(): StateCounts {
  return Object.fromEntries(MESSAGE_STATES.map((s) => [s, 0])) as StateCounts;
}

type Num = number | string;
const num = (v: Num): number => Number(v);
const numOrNull = (v: Num | null): number | null => (v === null ? null : Number(v));

/** A `messages` row: SQLite returns numbers and metadata as text, pg returns bigint as text and jsonb parsed. */
export interface MessageRow {
  id: Num;
  queue: string;
  state: MessageState;
  priority: Num;
  payload: string;
  metadata: string | Metadata | null;
  idempotency_key: string | null;
  exclusivity_key: string | null;
  attempts: Num;
  max_attempts: Num;
  lease_token: string | null;
  lease_expires_at: Num | null;
  visible_at: Num;
  created_at: Num;
  leased_at: Num | null;
  finished_at: Num | null;
  last_error: string | null;
}

export function messageRowToMessage(r: MessageRow): Message<string> {
  return {
    id: num(r.id),
    queue: r.queue,
    state: r.state,
    priority: num(r.priority),
    payload: r.payload,
    metadata:
      r.metadata === null
        ? {}
        : typeof r.metadata === 'string'
          ? (JSON.parse(r.metadata) as Metadata)
          : r.metadata,
    idempotencyKey: r.idempotency_key,
    exclusivityKey: r.exclusivity_key,
    attempts: num(r.attempts),
    maxAttempts: num(r.max_attempts),
    createdAt: num(r.created_at),
    visibleAt: num(r.visible_at),
    leasedAt: numOrNull(r.leased_at),
    leaseExpiresAt: numOrNull(r.lease_expires_at),
    finishedAt: numOrNull(r.finished_at),
    lastError: r.last_error,
  };
}

/** An `executions` row as both dialects return it. */
export interface ExecutionDbRow {
  id: string;
  workflow: string;
  version: string;
  status: string;
  priority: number | string;
  parent_id: string | null;
  seq: number;
  doc: string;
  created_at: number | string;
  updated_at: number | string;
  finished_at: number | string | null;
  owner: string | null;
  owner_until: number | string | null;
}

export function executionFromDb(r: ExecutionDbRow): ExecutionRow {
  return {
    id: r.id,
    workflow: r.workflow,
    version: r.version,
    status: r.status,
    priority: Number(r.priority),
    parentId: r.parent_id,
    seq: Number(r.seq),
    doc: r.doc,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    finishedAt: r.finished_at === null ? null : Number(r.finished_at),
    owner: r.owner,
    ownerUntil: r.owner_until === null ? null : Number(r.owner_until),
  };
}

export interface TraceDbRow {
  execution_id: string;
  seq: number;
  at: number | string;
  events: string;
}

export function traceFromDb(r: TraceDbRow): TraceRow {
  return { executionId: r.execution_id, seq: Number(r.seq), at: Number(r.at), events: r.events };
}

/** Text for a LIKE pattern, matched literally (with `ESCAPE '\'`). */
export function likeEscape(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** Whether a row passes a list filter's conditions other than its text search (see listExecutions). */
export function matches(row: ExecutionRow, f: ExecutionFilter): boolean {
  return (
    (f.workflow === undefined || row.workflow === f.workflow) &&
    (f.status === undefined || row.status === f.status) &&
    (f.parentId === undefined || row.parentId === f.parentId) &&
    (f.service === undefined || row.workflow.startsWith(`${f.service}.`)) &&
    (f.before === undefined ||
      row.createdAt < f.before.createdAt ||
      (row.createdAt === f.before.createdAt && row.id < f.before.id))
  );
}

/**
 * Priority classes (SPEC §5: classes shift priorities by large offsets from the enqueue time), as an SQL
 * expression both dialects accept: the offset of a message's priority from its enqueue time, bucketed.
 */
export const PRIORITY_CLASSES: [name: string, belowMs: number][] = [
  ['ahead_1d', -86_400_000 + 1],
  ['ahead_1h', -3_600_000 + 1],
  ['ahead_1m', -60_000 + 1],
  ['default', 60_000],
  ['behind_1m', 3_600_000],
  ['behind_1h', 86_400_000],
];
export function priorityClassSql(priority: string, createdAt: string): string {
  const whens = PRIORITY_CLASSES.map(
    ([name, below]) => `WHEN ${priority} - ${createdAt} < ${below} THEN '${name}'`,
  );
  return `CASE ${whens.join(' ')} ELSE 'behind_1d' END`;
}
