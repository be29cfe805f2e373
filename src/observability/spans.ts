import type { RunInfo } from '../functions/runtime.js';
import type { LogLine } from '../functions/run-logs.js';
import { childId, type Execution, type Outstanding, type TraceEvent } from '../workflow/execution.js';

/**
 * One bar of a trace (SPEC §8): an execution, a rule firing, an invocation, a child call, a timer. Spans are
 * derived from what each step committed (the execution document and its trace events), so a trace is as
 * durable as the state it describes and needs no second write path.
 */
export interface Span {
  /** `<execution>` for an execution, `<execution>/<request id>` for a request, `<execution>/r<n>` for a firing. */
  id: string;
  parentId: string | null;
  executionId: string;
  kind: 'execution' | 'rule' | 'invocation' | 'call' | 'timer' | 'signal';
  /** The workflow, rule, function, `service.operation` or timer. */
  name: string;
  start: number;
  /** Null while it is still open. */
  end: number | null;
  status: 'ok' | 'error' | 'running' | 'canceled';
  attributes: Record<string, unknown>;
  /** What an invocation's handler printed or logged (OTel span events on export). */
  logs?: LogLine[];
}

/** One execution of a trace: its document and its trace events in order. */
export interface TracedExecution {
  doc: Execution;
  events: TraceEvent[];
}

const REQUEST_KIND = { invoke: 'invocation', call: 'call', timer: 'timer' } as const;

/** The spans of an execution tree, parents before children, each execution's in time order. */
export function spansOf(executions: TracedExecution[]): Span[] {
  const out: Span[] = [];
  for (const x of executions) out.push(...executionSpans(x));
  return out;
}

function executionSpans({ doc: x, events }: TracedExecution): Span[] {
  const spans: Span[] = [
    {
      id: x.id,
      parentId: x.parent ? `${x.parent.id}/${x.parent.pid}` : null,
      executionId: x.id,
      kind: 'execution',
      name: x.workflow,
      start: x.createdAt,
      end: x.finishedAt ?? null,
      status: statusOf(x.status),
      attributes: {
        version: x.version,
        priority: x.priority,
        ...(x.error && { error: x.error }),
      },
    },
  ];
  let firing = 0;
  for (const e of events) {
    if (e.kind === 'rule') {
      spans.push({
        id: `${x.id}/r${++firing}`,
        parentId: x.id,
        executionId: x.id,
        kind: 'rule',
        name: e.rule ?? '?',
        start: e.at,
        end: e.at,
        status: 'ok',
        // The state and the requests' inputs stay in the events (the UI reads them there), out of exports.
        attributes: { ...(e.step !== undefined && { step: e.step }), requests: e.data?.requests ?? 0 },
      });
    } else if ((e.kind === 'reaction' || e.kind === 'error') && typeof e.data?.pid === 'string') {
      spans.push(answered(x, e));
    } else if (e.kind === 'signal') {
      spans.push({
        id: `${x.id}/s${e.at}-${spans.length}`,
        parentId: x.id,
        executionId: x.id,
        kind: 'signal',
        name: typeof e.data?.name === 'string' ? e.data.name : 'signal',
        start: e.at,
        end: e.at,
        status: 'ok',
        attributes: {},
      });
    }
  }
  for (const [pid, o] of Object.entries(x.outstanding)) spans.push(open(x, pid, o));
  return spans;
}

/** A request whose answer came: from when it was asked to when the answer was applied. */
function answered(x: Execution, e: TraceEvent): Span {
  const d = e.data!;
  const pid = d.pid as string;
  const kind = (d.kind as Outstanding['kind'] | undefined) ?? 'invoke';
  const { logs, logsDropped, ...run } = (d.run ?? {}) as Partial<RunInfo>;
  const ran = d.run !== undefined ? (run as RunInfo) : undefined;
  const requestedAt = typeof d.requestedAt === 'number' ? d.requestedAt : (ran?.startedAt ?? e.at);
  return {
    id: `${x.id}/${pid}`,
    parentId: x.id,
    executionId: x.id,
    kind: REQUEST_KIND[kind],
    name: typeof d.target === 'string' ? d.target : '?',
    start: requestedAt,
    end: e.at,
    status: e.kind === 'error' ? 'error' : 'ok',
    attributes: {
      pid,
      rule: e.rule,
      ...(d.key !== undefined && { key: d.key }),
      ...(kind === 'call' && { childExecutionId: childId(x.id, pid) }),
      ...(ran && {
        ...ran,
        waitMs: Math.max(0, ran.startedAt - requestedAt),
        runMs: ran.finishedAt - ran.startedAt,
      }),
      ...(logsDropped !== undefined && { logsDropped }),
      ...(d.error !== undefined && { error: d.error }),
    },
    ...(logs && { logs }),
  };
}

/** A request still out: its bar runs to now. */
function open(x: Execution, pid: string, o: Outstanding): Span {
  return {
    id: `${x.id}/${pid}`,
    parentId: x.id,
    executionId: x.id,
    kind: REQUEST_KIND[o.kind],
    name: o.target,
    start: o.at ?? x.updatedAt,
    end: null,
    status: 'running',
    attributes: {
      pid,
      rule: o.rule,
      ...(o.key !== undefined && { key: o.key }),
      ...(o.kind === 'call' && { childExecutionId: childId(x.id, pid) }),
      ...(o.due !== undefined && { due: o.due }),
      ...(o.local && { local: true }),
    },
  };
}

function statusOf(status: Execution['status']): Span['status'] {
  return status === 'succeeded' ? 'ok' : status === 'failed' ? 'error' : status;
}
