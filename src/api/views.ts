import type { RunInfo } from '../functions/runtime.js';
import type { Execution, TraceEvent } from '../workflow/execution.js';

/** Where an execution's resources are, relative to the server. */
export function executionLinks(id: string): Record<string, string> {
  const self = `/v1/executions/${encodeURIComponent(id)}`;
  return {
    self,
    trace: `${self}/trace`,
    cancel: `${self}/cancel`,
    signal: `${self}/signal`,
    ui: `/ui/executions/${encodeURIComponent(id)}`,
  };
}

/** The service and operation an execution runs, from its workflow name (`service.operation`). */
export function operationOf(workflow: string): { service: string; operation: string } | undefined {
  const dot = workflow.indexOf('.');
  return dot > 0 ? { service: workflow.slice(0, dot), operation: workflow.slice(dot + 1) } : undefined;
}

/** An execution in a list: what identifies it and how it went, without its data. */
export function executionSummary(x: Execution): Record<string, unknown> {
  return {
    executionId: x.id,
    ...operationOf(x.workflow),
    workflow: x.workflow,
    version: x.version,
    status: x.status,
    priority: x.priority,
    ...(x.parent && { parentId: x.parent.id }),
    createdAt: new Date(x.createdAt).toISOString(),
    updatedAt: new Date(x.updatedAt).toISOString(),
    ...(x.finishedAt !== undefined && {
      finishedAt: new Date(x.finishedAt).toISOString(),
      durationMs: x.finishedAt - x.createdAt,
    }),
  };
}

/** One execution as `GET /v1/executions/{id}` answers it. */
export function executionView(x: Execution): Record<string, unknown> {
  return {
    ...executionSummary(x),
    input: x.input,
    ...(x.status === 'succeeded' && { output: x.output ?? null }),
    ...(x.error && { error: x.error }),
    state: x.state,
    outstanding: Object.entries(x.outstanding).map(([id, o]) => ({
      id,
      kind: o.kind,
      rule: o.rule,
      target: o.target,
      ...(o.key !== undefined && { key: o.key }),
    })),
    links: executionLinks(x.id),
  };
}

/** One line of `GET /v1/executions/{id}/logs`: a workflow's ctx.log or what a function printed. */
export interface LogView {
  at: string;
  level: string;
  msg: string;
  /** `workflow` (ctx.log in a rule) or `function`. */
  source: 'workflow' | 'function';
  rule?: string;
  /** For function lines: the function and the request id of its invocation. */
  function?: string;
  pid?: string;
  data?: Record<string, unknown>;
}

/** The log lines held in an execution's trace events, in time order. */
export function logLines(events: TraceEvent[]): LogView[] {
  const out: (LogView & { t: number })[] = [];
  for (const e of events) {
    if (e.kind === 'log') {
      const { message, ...data } = e.data ?? {};
      out.push({
        t: e.at,
        at: '',
        level: 'info',
        msg: typeof message === 'string' ? message : JSON.stringify(message ?? ''),
        source: 'workflow',
        ...(e.rule !== undefined && { rule: e.rule }),
        ...(Object.keys(data).length > 0 && { data }),
      });
    } else if (e.kind === 'reaction' || e.kind === 'error') {
      const logs = (e.data?.run as RunInfo | undefined)?.logs;
      for (const l of logs ?? [])
        out.push({
          t: l.at,
          at: '',
          level: l.level,
          msg: l.msg,
          source: 'function',
          ...(typeof e.data?.target === 'string' && { function: e.data.target }),
          ...(typeof e.data?.pid === 'string' && { pid: e.data.pid }),
        });
    }
  }
  // Stable: lines of one invocation keep their order when clocks tie.
  return out.sort((a, b) => a.t - b.t).map(({ t, ...l }) => ({ ...l, at: new Date(t).toISOString() }));
}
