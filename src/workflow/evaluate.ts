import { enablePatches, Immer, type Draft, type Patch } from 'immer';
import type { Rule, RuleContext, Workflow, WorkflowFailure, WorkflowResult } from './define.js';
import type { RunInfo } from '../functions/runtime.js';
import {
  childId,
  type Effect,
  type Execution,
  type ExecutionEvent,
  type Outstanding,
  type TraceEvent,
} from './execution.js';

// Frozen states would cost a deep walk per step and the engine never hands drafts out; plain objects suffice.
// Patches: the trace records what each step changed (see mutate), not a copy of the whole state per step.
enablePatches();
const immer = new Immer({ autoFreeze: false });

/** Passes over the rules before an execution is failed as not settling (a rule re-arming itself forever). */
const MAX_PASSES = 1_000;

export interface StepResult<S = unknown> {
  execution: Execution<S>;
  effects: Effect[];
  trace: TraceEvent[];
  /** Names of the rules whose action ran, in order. */
  fired: string[];
  /** False when the event changed nothing (e.g. a duplicate answer): there is nothing to commit. */
  changed: boolean;
}

/** A new execution document, before its start event is applied. */
export function newExecution<S>(
  init: Pick<Execution<S>, 'id' | 'workflow' | 'version' | 'input' | 'priority' | 'parent'> & { now: number },
): Execution<S> {
  return {
    id: init.id,
    workflow: init.workflow,
    version: init.version,
    status: 'running',
    input: init.input,
    state: undefined as S,
    priority: init.priority,
    ...(init.parent && { parent: init.parent }),
    seq: 0,
    nextPid: 1,
    outstanding: {},
    createdAt: init.now,
    updatedAt: init.now,
  };
}

/** Thrown inside rule code by complete()/fail() bookkeeping misuse; caught by the step. */
class StepFailure extends Error {
  constructor(readonly failure: WorkflowFailure) {
    super(failure.message);
  }
}

/**
 * One step of an execution, without side effects (SPEC §4): apply the event, then forward-chain, firing
 * every rule whose match holds, in order, until a pass fires nothing. The durable engine commits the result
 * with its effects in one transaction; the test harness runs the same function in memory.
 */
export function step<S, I>(
  workflow: Workflow<I, S>,
  current: Execution<S>,
  event: ExecutionEvent,
  now: number,
): StepResult<S> {
  const x: Execution<S> = { ...current, outstanding: { ...current.outstanding } };
  const effects: Effect[] = [];
  const trace: TraceEvent[] = [];
  const fired: string[] = [];
  const out = (): StepResult<S> => {
    x.updatedAt = now;
    x.seq = current.seq + 1;
    return { execution: x, effects, trace, fired, changed: true };
  };
  if (x.status !== 'running') {
    trace.push({ kind: 'dropped', at: now, data: { event: event.kind, reason: `execution is ${x.status}` } });
    return { execution: current, effects: [], trace, fired, changed: false };
  }
  // A start delivered again (a child's create event redelivered) finds the execution started: nothing to do.
  if (event.kind === 'start' && current.seq > 0)
    return { execution: current, effects: [], trace: [], fired, changed: false };

  let finish: { ok: true; output: unknown } | { ok: false; error: WorkflowFailure } | undefined;
  let requested = 0;
  // Inputs and outputs often hold parts of the draft, which die with it: copy them while they are alive.
  // They travel as JSON anyway, so a JSON copy is also the earliest check that they can.
  const plain = (v: unknown): unknown => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));
  // The trace line of the step running now (a firing, reaction, error or signal): ctx.log lines come after it.
  const stepEvent = (): TraceEvent | undefined => {
    for (let i = trace.length - 1; i >= 0; i--) if (trace[i]!.kind !== 'log') return trace[i];
    return undefined;
  };
  // What each request was asked with, kept on the step's trace line for the UI's invocation details.
  const asked = (pid: string, input: unknown): void => {
    const data = stepEvent()?.data;
    if (data) ((data.inputs ??= {}) as Record<string, unknown>)[pid] = input;
  };
  const ctx = (rule: string): RuleContext<I> => ({
    executionId: x.id,
    input: x.input as I,
    invoke(fn, input, o = {}) {
      const pid = request(rule, 'invoke', fn, o.key);
      const copy = plain(input);
      asked(pid, copy);
      effects.push({
        kind: 'invoke',
        pid,
        fn,
        input: copy,
        priority: o.priority ?? x.priority,
        ...(o.key !== undefined && { key: o.key }),
        ...(o.pool !== undefined && { pool: o.pool }),
      });
    },
    call(service, operation, input, o = {}) {
      const pid = request(rule, 'call', `${service}.${operation}`, o.key);
      const copy = plain(input);
      asked(pid, copy);
      effects.push({
        kind: 'call',
        pid,
        service,
        operation,
        input: copy,
        priority: o.priority ?? x.priority,
        childId: childId(x.id, pid),
      });
    },
    sleep(ms, o = {}) {
      if (!Number.isFinite(ms) || ms < 0)
        throw new StepFailure({ code: 'workflow_invalid_timer', message: `sleep(${ms}): not a duration` });
      const due = now + ms;
      const pid = request(rule, 'timer', 'sleep', o.key, due);
      effects.push({ kind: 'timer', pid, due });
    },
    complete(output) {
      finish ??= { ok: true, output: plain(output) };
    },
    fail(error) {
      finish ??= { ok: false, error: plain(toFailure(error, 'workflow_failed')) as WorkflowFailure };
    },
    log(message, data) {
      trace.push({ kind: 'log', at: now, rule, data: { message, ...(plain(data) as object) } });
    },
    now: () => now,
  });
  const request = (
    rule: string,
    kind: Outstanding['kind'],
    target: string,
    key: string | undefined,
    due?: number,
  ): string => {
    const pid = `p${x.nextPid++}`;
    requested++;
    x.outstanding[pid] = {
      kind,
      rule,
      target,
      ...(key !== undefined && { key }),
      ...(due !== undefined && { due }),
      at: now,
    };
    return pid;
  };
  /** Runs rule code on a draft of the state; a throw fails the execution, naming the rule. */
  const mutate = (
    label: string,
    rule: string,
    recipe: (draft: Draft<S>, c: RuleContext<I>) => void,
  ): boolean => {
    const before = x.state;
    let patches: Patch[];
    try {
      [x.state, patches] = immer.produceWithPatches(x.state, (d: Draft<S>) => {
        recipe(d, ctx(rule));
      });
    } catch (e) {
      finish ??= {
        ok: false,
        error:
          e instanceof StepFailure
            ? e.failure
            : {
                code: 'workflow_rule_threw',
                message: `${label} threw: ${e instanceof Error ? e.message : String(e)}`,
                details: { rule: label },
              },
      };
      return false;
    }
    const changed = x.state !== before;
    // What the step changed, on the trace line that describes it: the UI replays the state after each step
    // from the initial state (on `started`) and these. Patches grow with the change, not with the state, so
    // a fan-out of n results writes O(n) trace, not n copies of a state that holds them all.
    const step = stepEvent();
    if (changed && step?.data && patches.length > 0)
      step.data.patches = [...((step.data.patches as Patch[] | undefined) ?? []), ...patches];
    return changed;
  };

  // 1. The event.
  switch (event.kind) {
    case 'start': {
      try {
        x.state = workflow.initial(x.input as I);
      } catch (e) {
        finish = { ok: false, error: toFailure(e, 'workflow_initial_threw') };
      }
      trace.push({ kind: 'started', at: now, data: { version: x.version, state: x.state } });
      break;
    }
    case 'result': {
      const o = x.outstanding[event.pid];
      if (!o) {
        trace.push({
          kind: 'dropped',
          at: now,
          data: { pid: event.pid, reason: 'no request is waiting for it' },
        });
        return { execution: current, effects: [], trace, fired, changed: false };
      }
      delete x.outstanding[event.pid];
      const r = workflow.rules.find((candidate) => candidate.name === o.rule);
      if (event.ok) {
        const result: WorkflowResult = {
          kind: o.kind,
          target: o.target,
          key: o.key,
          output: event.output,
          id: o.kind === 'call' ? childId(x.id, event.pid) : event.pid,
          ...(event.files && { files: event.files }),
        };
        trace.push({
          kind: 'reaction',
          at: now,
          rule: o.rule,
          data: {
            ...requestData(event.pid, o, event.run),
            output: event.output ?? null,
            ...(event.files && { files: event.files }),
          },
        });
        if (r?.reaction) mutate(`reaction of rule "${o.rule}"`, o.rule, (d, c) => r.reaction!(d, result, c));
      } else {
        trace.push({
          kind: 'error',
          at: now,
          rule: o.rule,
          data: { ...requestData(event.pid, o, event.run), error: event.error },
        });
        if (r?.error)
          mutate(`error section of rule "${o.rule}"`, o.rule, (d, c) =>
            r.error!(d, { ...event.error, target: o.target, ...(o.key !== undefined && { key: o.key }) }, c),
          );
        else
          finish ??= {
            ok: false,
            error: {
              ...event.error,
              message: `${o.target} (requested by rule "${o.rule}", which has no error section) failed: ${event.error.message}`,
            },
          };
      }
      break;
    }
    case 'signal': {
      const handler = workflow.signals[event.name];
      trace.push({ kind: 'signal', at: now, data: { name: event.name } });
      if (handler)
        mutate(`signal "${event.name}"`, `signal:${event.name}`, (d, c) => handler(d, event.payload, c));
      else
        finish ??= {
          ok: false,
          error: { code: 'workflow_signal_unknown', message: `the workflow has no signal "${event.name}"` },
        };
      break;
    }
    case 'cancel':
      return finishWith(x, { status: 'canceled', reason: event.reason }, effects, trace, now, out);
    case 'reevaluate':
      trace.push({ kind: 'upgraded', at: now, data: { version: x.version } });
      break;
  }

  // 2. Forward chaining.
  for (let pass = 0; finish === undefined; pass++) {
    if (pass >= MAX_PASSES) {
      finish = {
        ok: false,
        error: {
          code: 'workflow_rules_unsettled',
          message: `rules kept firing for ${MAX_PASSES} passes without settling (last fired: ${fired.slice(-3).join(', ')})`,
        },
      };
      break;
    }
    let firedThisPass = false;
    for (const r of workflow.rules) {
      if (finish !== undefined) break;
      let matches: boolean;
      try {
        matches = r.match(x.state);
      } catch (e) {
        finish = {
          ok: false,
          error: {
            code: 'workflow_rule_threw',
            message: `match of rule "${r.name}" threw: ${e instanceof Error ? e.message : String(e)}`,
            details: { rule: r.name },
          },
        };
        break;
      }
      if (!matches) continue;
      if (!fire(r)) break;
      firedThisPass = true;
    }
    if (!firedThisPass) break;
  }

  function fire(r: Rule<S, I>): boolean {
    const before = requested;
    const firing: TraceEvent = { kind: 'rule', at: now, rule: r.name, data: { requests: 0 } };
    trace.push(firing);
    const changed = mutate(`action of rule "${r.name}"`, r.name, (d, c) => r.action(d, c));
    fired.push(r.name);
    firing.data!.requests = requested - before;
    if (finish !== undefined) return false;
    if (!changed && requested === before) {
      finish = {
        ok: false,
        error: {
          code: 'workflow_no_progress',
          message: `rule "${r.name}" matched but its action changed nothing and requested nothing, so it would match forever: make its action change what its match reads`,
          details: { rule: r.name },
        },
      };
      return false;
    }
    return true;
  }

  if (finish !== undefined)
    return finishWith(
      x,
      finish.ok ? { status: 'succeeded', output: finish.output } : { status: 'failed', error: finish.error },
      effects,
      trace,
      now,
      out,
    );
  if (Object.keys(x.outstanding).length === 0 && !workflow.alwaysOn)
    return finishWith(
      x,
      {
        status: 'failed',
        error: {
          code: 'workflow_stalled',
          message:
            'no rule matched, nothing is running and the workflow did not complete: call ctx.complete() when done, or mark it alwaysOn to wait for signals',
        },
      },
      effects,
      trace,
      now,
      out,
    );
  return out();
}

type Ending =
  | { status: 'succeeded'; output: unknown }
  | { status: 'failed'; error: WorkflowFailure }
  | { status: 'canceled'; reason: string };

/** Ends the execution: whatever it still waits for is withdrawn, and requests this step made are dropped. */
function finishWith<S>(
  x: Execution<S>,
  end: Ending,
  effects: Effect[],
  trace: TraceEvent[],
  now: number,
  out: () => StepResult<S>,
): StepResult<S> {
  const made = new Set(effects.map((e) => ('pid' in e ? e.pid : '')));
  const waiting = Object.entries(x.outstanding)
    .filter(([pid]) => !made.has(pid))
    .map(([pid, o]) => ({ pid, ...o }));
  effects.length = 0;
  if (waiting.length > 0) effects.push({ kind: 'withdraw', requests: waiting });
  x.outstanding = {};
  x.status = end.status;
  x.finishedAt = now;
  if (end.status === 'succeeded') {
    if (end.output !== undefined) x.output = end.output;
    trace.push({ kind: 'succeeded', at: now });
  } else if (end.status === 'failed') {
    x.error = end.error;
    trace.push({ kind: 'failed', at: now, data: { error: end.error } });
  } else {
    x.error = { code: 'execution_canceled', message: end.reason };
    trace.push({ kind: 'canceled', at: now, data: { reason: end.reason } });
  }
  return out();
}

export function toFailure(e: unknown, code: string): WorkflowFailure {
  if (typeof e === 'string') return { code, message: e };
  if (e && typeof e === 'object' && 'code' in e && 'message' in e && typeof e.message === 'string') {
    const c = e as { code: unknown; message: string; details?: unknown };
    return {
      code: typeof c.code === 'string' ? c.code : code,
      message: c.message,
      ...(c.details !== null &&
        typeof c.details === 'object' && { details: c.details as Record<string, unknown> }),
    };
  }
  if (e instanceof Error) return { code, message: e.message };
  return { code, message: String(e) };
}

/** What the trace keeps of an answered request: enough to draw its bar (asked, ran, answered). */
function requestData(pid: string, o: Outstanding, run: RunInfo | undefined): Record<string, unknown> {
  return {
    pid,
    kind: o.kind,
    target: o.target,
    ...(o.key !== undefined && { key: o.key }),
    ...(o.at !== undefined && { requestedAt: o.at }),
    ...(run && { run }),
  };
}
