import type { RunInfo } from '../functions/runtime.js';
import type { WorkflowFailure } from './define.js';

export type ExecutionStatus = 'running' | 'succeeded' | 'failed' | 'canceled';
export const EXECUTION_STATUSES: readonly ExecutionStatus[] = ['running', 'succeeded', 'failed', 'canceled'];

/** A request an execution made and is waiting for: its answer goes to the rule that made it. */
export interface Outstanding {
  kind: 'invoke' | 'call' | 'timer';
  rule: string;
  /** Function name, `service.operation`, or `sleep`. */
  target: string;
  key?: string;
  /** Timers: when it fires (epoch ms). */
  due?: number;
  /** When the rule asked for it (epoch ms): the start of its bar in the trace. */
  at?: number;
  /**
   * A local invocation (run by the node that owns the execution, not a queue message): what it was sent, so
   * another node can queue it if the owner dies.
   */
  local?: { input: unknown; priority: number };
}

/** Where a child execution reports back: its parent and the request id the parent is waiting on. */
export interface ParentLink {
  id: string;
  pid: string;
}

/**
 * An execution as one durable document: the workflow's facts (`state`) and the engine's bookkeeping
 * (outstanding requests, sequence). Every step replaces it whole, in one transaction with its effects.
 */
export interface Execution<S = unknown> {
  id: string;
  workflow: string;
  version: string;
  status: ExecutionStatus;
  input: unknown;
  state: S;
  output?: unknown;
  error?: WorkflowFailure;
  priority: number;
  parent?: ParentLink;
  /** Steps committed: the optimistic-concurrency check of every update. */
  seq: number;
  /** Next request id number (`p1`, `p2`…): ids are never reused within an execution. */
  nextPid: number;
  outstanding: Record<string, Outstanding>;
  createdAt: number;
  updatedAt: number;
  finishedAt?: number;
}

/** What moves an execution: its start, an answer, a signal, a cancellation, a new version. */
export type ExecutionEvent =
  | { kind: 'start' }
  | {
      kind: 'result';
      pid: string;
      ok: true;
      output: unknown;
      files?: Record<string, string>;
      run?: RunInfo;
    }
  | { kind: 'result'; pid: string; ok: false; error: WorkflowFailure; run?: RunInfo }
  | { kind: 'signal'; name: string; payload: unknown }
  | { kind: 'cancel'; reason: string }
  | { kind: 'reevaluate' };

/** What a step asks the platform to do once its state is committed (the transactional outbox). */
export type Effect =
  | { kind: 'invoke'; pid: string; fn: string; input: unknown; priority: number; key?: string; pool?: string }
  | {
      kind: 'call';
      pid: string;
      service: string;
      operation: string;
      input: unknown;
      priority: number;
      childId: string;
    }
  | { kind: 'timer'; pid: string; due: number }
  /** Requests to withdraw because the execution finished: queued invocations, children, timers. */
  | { kind: 'withdraw'; requests: (Outstanding & { pid: string })[] };

export type TraceKind =
  | 'started'
  | 'rule'
  | 'reaction'
  | 'error'
  | 'signal'
  | 'dropped'
  | 'log'
  | 'succeeded'
  | 'failed'
  | 'canceled'
  | 'upgraded';

/** One line of an execution's trace, written in the same commit as the step it describes. */
export interface TraceEvent {
  kind: TraceKind;
  at: number;
  /** The execution's step count after the step that wrote it. */
  step?: number;
  rule?: string;
  data?: Record<string, unknown>;
}

/** Ids of children are derived from the parent's, so re-running a step cannot start a second child. */
export function childId(parent: string, pid: string): string {
  return `${parent}.${pid}`;
}

export function isFinished(status: ExecutionStatus): boolean {
  return status !== 'running';
}
