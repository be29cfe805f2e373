import { InvalidArgumentError } from '../errors.js';
import { FUNCTION_DEFAULTS, isFunctionDefinition, type FunctionDefinition } from '../functions/define.js';
import type { Workflow, WorkflowFailure } from './define.js';
import { newExecution, step, toFailure } from './evaluate.js';
import type { Execution, ExecutionEvent, Outstanding, TraceEvent } from './execution.js';
import { versionOf } from './registry.js';

/** A stand-in for a function or a child operation: gets the input, returns the output (or throws). */
export type Stub = (input: unknown, info: { attempt: number; key: string | undefined }) => unknown;

export interface HarnessOptions {
  /** By function name: a stub, or a real fn() definition run in this process with its schemas checked. */
  functions?: Record<string, Stub | FunctionDefinition>;
  /** By `service.operation`: a stub for the child execution's output. */
  calls?: Record<string, Stub>;
  /** Start of the virtual clock (epoch ms); default 0. */
  now?: number;
  /** Attempts for stubs (real definitions use their own); default the function default (3). */
  attempts?: number;
  executionId?: string;
  priority?: number;
}

/** A request the execution is waiting on, with what it was sent. */
export interface PendingRequest extends Outstanding {
  pid: string;
  input: unknown;
}

/** One step as the harness recorded it: what moved the execution, which rules fired, the state after. */
export interface Firing<S> {
  event: ExecutionEvent;
  fired: string[];
  state: S;
  status: Execution['status'];
  trace: TraceEvent[];
  at: number;
}

/**
 * Runs a workflow in memory (the `cosmos-platform/testing` export): the engine's own step function, stub or
 * real functions, a virtual clock. Step through it and assert on the state after each firing, without a
 * store, a queue or a worker.
 */
export class WorkflowHarness<I, S> {
  private x: Execution<S> | undefined;
  private readonly inputs = new Map<string, unknown>();
  private clock: number;
  readonly history: Firing<S>[] = [];

  constructor(
    private readonly workflow: Workflow<I, S>,
    private readonly options: HarnessOptions = {},
  ) {
    this.clock = options.now ?? 0;
  }

  get execution(): Execution<S> {
    if (!this.x)
      throw new InvalidArgumentError('the harness has not started an execution: call start(input)');
    return this.x;
  }
  get state(): S {
    return this.execution.state;
  }
  get status(): Execution['status'] {
    return this.execution.status;
  }
  get output(): unknown {
    return this.execution.output;
  }
  get error(): WorkflowFailure | undefined {
    return this.execution.error;
  }
  now(): number {
    return this.clock;
  }

  start(input: I): Firing<S> {
    if (this.x) throw new InvalidArgumentError('this harness already started an execution');
    this.x = newExecution<S>({
      id: this.options.executionId ?? 'test-execution',
      workflow: 'test',
      version: versionOf(this.workflow),
      input,
      priority: this.options.priority ?? 0,
      now: this.clock,
    });
    return this.apply({ kind: 'start' });
  }

  /** Requests waiting for an answer, oldest first. */
  pending(): PendingRequest[] {
    return Object.entries(this.execution.outstanding)
      .sort(([a], [b]) => Number(a.slice(1)) - Number(b.slice(1)))
      .map(([pid, o]) => ({ pid, ...o, input: this.inputs.get(pid) }));
  }

  /** Answers one request by hand. */
  resolve(pid: string, output: unknown): Firing<S> {
    this.expectPending(pid);
    return this.apply({ kind: 'result', pid, ok: true, output });
  }

  /** Fails one request by hand, as if its attempts were spent. */
  reject(pid: string, error: WorkflowFailure | Error | string): Firing<S> {
    this.expectPending(pid);
    return this.apply({ kind: 'result', pid, ok: false, error: toFailure(error, 'function_failed') });
  }

  signal(name: string, payload?: unknown): Firing<S> {
    return this.apply({ kind: 'signal', name, payload });
  }

  cancel(reason = 'canceled by the test'): Firing<S> {
    return this.apply({ kind: 'cancel', reason });
  }

  /** Moves the virtual clock; every timer that becomes due fires, in due order, each as its own step. */
  advance(ms: number): Firing<S>[] {
    const until = this.clock + ms;
    const out: Firing<S>[] = [];
    for (;;) {
      const next = this.pending()
        .filter((p) => p.kind === 'timer' && p.due! <= until)
        .sort((a, b) => a.due! - b.due!)[0];
      if (!next || this.execution.status !== 'running') break;
      this.clock = Math.max(this.clock, next.due!);
      out.push(this.apply({ kind: 'result', pid: next.pid, ok: true, output: { firedAt: this.clock } }));
    }
    this.clock = until;
    return out;
  }

  /**
   * Answers the oldest waiting function or child request by running its stub or definition (retrying up to
   * its attempts, then delivering the failure). Undefined when only timers (or nothing) are left.
   */
  async step(): Promise<Firing<S> | undefined> {
    const next = this.pending().find((p) => p.kind !== 'timer');
    if (!next) return undefined;
    return this.apply(await this.answer(next));
  }

  /** Steps, moving the clock to the next timer when only timers are left, until the execution settles. */
  async run(maxSteps = 10_000): Promise<Execution<S>> {
    for (let i = 0; i < maxSteps && this.execution.status === 'running'; i++) {
      if (await this.step()) continue;
      const timers = this.pending().filter((p) => p.kind === 'timer');
      if (timers.length === 0) break;
      this.advance(Math.max(0, Math.min(...timers.map((t) => t.due!)) - this.clock));
    }
    return this.execution;
  }

  private async answer(p: PendingRequest): Promise<ExecutionEvent> {
    const impl = p.kind === 'invoke' ? this.options.functions?.[p.target] : this.options.calls?.[p.target];
    if (!impl)
      throw new InvalidArgumentError(
        `the harness has no ${p.kind === 'invoke' ? 'function' : 'call stub'} for "${p.target}" (requested by rule "${p.rule}")`,
      );
    const def = isFunctionDefinition(impl) ? impl : undefined;
    const attempts = def?.options.attempts ?? this.options.attempts ?? FUNCTION_DEFAULTS.attempts;
    let last: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const output = def
          ? await runDefinition(def, p, attempt)
          : await (impl as Stub)(p.input, { attempt, key: p.key });
        return { kind: 'result', pid: p.pid, ok: true, output };
      } catch (e) {
        last = e;
        if ((e as { retryable?: boolean }).retryable === false) break;
      }
    }
    return { kind: 'result', pid: p.pid, ok: false, error: toFailure(last, 'function_failed') };
  }

  private expectPending(pid: string): void {
    if (!(pid in this.execution.outstanding))
      throw new InvalidArgumentError(
        `no request "${pid}" is waiting; waiting: ${Object.keys(this.execution.outstanding).join(', ') || 'none'}`,
      );
  }

  private apply(event: ExecutionEvent): Firing<S> {
    const r = step(this.workflow, this.execution, event, this.clock);
    this.x = r.execution;
    for (const e of r.effects) if ('input' in e) this.inputs.set(e.pid, e.input);
    const firing: Firing<S> = {
      event,
      fired: r.fired,
      state: structuredClone(r.execution.state),
      status: r.execution.status,
      trace: r.trace,
      at: this.clock,
    };
    this.history.push(firing);
    return firing;
  }
}

/** A real definition, in this process: input and output checked by its schemas, a batch handler given one item. */
async function runDefinition(def: FunctionDefinition, p: PendingRequest, attempt: number): Promise<unknown> {
  const parsed = def.input.safeParse(p.input);
  if (!parsed.success)
    throw Object.assign(
      new Error(`input of ${p.target} does not match its schema: ${parsed.error.message}`),
      {
        code: 'function_input_invalid',
        retryable: false,
      },
    );
  const ctx = {
    invocationId: `harness-${p.pid}`,
    attempt,
    signal: new AbortController().signal,
    heartbeat: () => undefined,
    log: () => undefined,
    files: { inputs: {}, outDir: '' },
  };
  const handler = def.handler as (input: unknown, c: typeof ctx) => unknown;
  let output = def.options.batch
    ? ((await handler([parsed.data], ctx)) as unknown[])[0]
    : await handler(parsed.data, ctx);
  if (output instanceof Error) throw output;
  const checked = def.output.safeParse(output);
  if (!checked.success)
    throw Object.assign(
      new Error(`output of ${p.target} does not match its schema: ${checked.error.message}`),
      {
        code: 'function_output_invalid',
        retryable: false,
      },
    );
  output = checked.data;
  return output;
}

export function testWorkflow<I, S>(
  workflow: Workflow<I, S>,
  options?: HarnessOptions,
): WorkflowHarness<I, S> {
  return new WorkflowHarness(workflow, options);
}
