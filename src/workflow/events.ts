import type { ExecutionEvent, ParentLink } from './execution.js';
import type { RunInfo } from '../functions/runtime.js';
import type { WorkflowFailure } from './define.js';

/**
 * Everything that moves an execution travels on one exclusive queue, keyed by execution id, so at most one
 * event per execution is being applied at a time anywhere (SPEC §4).
 */
export const EVENTS_QUEUE = 'workflow.events';

/**
 * Deliveries of one event before the queue gives up on it. An event is never poison in itself (a rule that
 * throws fails its execution, it does not fail the event), but each node that dies holding it, or each lease
 * that lapses while the database is away, spends a delivery. With the queue's usual three, a fleet losing
 * nodes would drop results and leave executions waiting forever; events are retried as long as it takes.
 */
export const EVENT_DELIVERIES = 1_000_000;

/** An event for an execution; `create` starts it (a child execution's first event). */
export interface EventMessage {
  x: string;
  /** `recover`: the execution's owner lapsed; its local invocations go to the queue (an engine event). */
  e: ExecutionEvent | { kind: 'recover' };
  create?: { workflow: string; input: unknown; priority: number; parent?: ParentLink };
  /** For `reevaluate`: the version to move to. */
  to?: string;
}

/** A function's answer as the function runtime sends it back (see InvocationPayload.replyTo). */
export interface ReplyMessage {
  messageId: number;
  fn: string;
  tag: { x: string; pid: string };
  ok: boolean;
  output?: unknown;
  /** Blob references of what a function with file I/O wrote. */
  files?: Record<string, string>;
  error?: WorkflowFailure;
  /** When and where the attempt that answered ran. */
  run?: RunInfo;
}

export function isReply(p: unknown): p is ReplyMessage {
  return typeof p === 'object' && p !== null && 'messageId' in p && 'tag' in p;
}

/** The execution an event message is for and the event it carries. */
export function eventOf(p: EventMessage | ReplyMessage): {
  x: string;
  event: ExecutionEvent | { kind: 'recover' };
} {
  if (!isReply(p)) return { x: p.x, event: p.e };
  const run = p.run && { run: p.run };
  const event: ExecutionEvent = p.ok
    ? {
        kind: 'result',
        pid: p.tag.pid,
        ok: true,
        output: p.output,
        ...(p.files && { files: p.files }),
        ...run,
      }
    : {
        kind: 'result',
        pid: p.tag.pid,
        ok: false,
        error: p.error ?? { code: 'function_failed', message: `${p.fn} failed` },
        ...run,
      };
  return { x: p.tag.x, event };
}
