import { hostname } from 'node:os';
import type { Dispatcher } from './dispatcher.js';
import { asFailure, FunctionFailure } from './failure.js';
import { Gatherer } from './gather.js';
import type { BatchAnswer } from './protocol.js';
import type { LogLine, RunLogs } from './run-logs.js';
import type { RegisteredFunction } from './registry.js';
import type { WorkerPool } from './worker-pool.js';

/** This process, as traces name the node an invocation ran on. */
export const NODE_NAME = `${hostname()}:${process.pid}`;

/** When and where one attempt ran: what the trace shows as the invocation's bar. */
export interface RunInfo {
  /** When a worker took it (epoch ms). */
  startedAt: number;
  finishedAt: number;
  attempt: number;
  /** The node that ran it (host:pid). */
  node: string;
  /** The worker on that node (see Runner.name). */
  worker?: string;
  /** Invocations that shared the handler call (micro-batching); 1 without batching. */
  batch: number;
  runtime: 'thread' | 'sandbox' | 'command';
  /** What the handler printed or logged, in order (at most MAX_LOG_LINES; `logsDropped` counts the rest). */
  logs?: LogLine[];
  logsDropped?: number;
}

/** The outcome of a direct run (see runDirect). */
export type DirectResult = ({ ok: true; output: unknown } | { ok: false; error: FunctionFailure }) & {
  run?: RunInfo;
};

/** A local invocation of a batch function, waiting to be gathered into a handler call. */
interface DirectItem {
  input: unknown;
  priority: number;
  invocationId: string;
  settle: (r: DirectResult) => void;
  /** The dispatcher job it went out in. */
  job?: string;
  withdrawn?: boolean;
}

/** What the direct path needs of the runtime it belongs to. */
export interface DirectHost {
  /** Undefined while the runtime is stopped. */
  dispatcher(): Dispatcher | undefined;
  workers(reg: RegisteredFunction): WorkerPool;
  countCall(name: string): void;
  nextId(): string;
  /** A collector for one handler call's log lines (with the runtime's redaction). */
  newLogs(): RunLogs;
  /** An attempt settled (`askedAt`: when the caller asked for it). */
  observed(reg: RegisteredFunction, result: DirectResult, askedAt: number): void;
}

/**
 * The local path of the function runtime: one attempt on this node's workers, no queue message (the workflow
 * engine records the invocation durably itself). Batch functions are gathered here as on the queued path.
 */
export class DirectPath {
  private readonly gatherers = new Map<string, Gatherer<DirectItem>>();

  constructor(private readonly host: DirectHost) {}

  /**
   * Runs one attempt on this node's workers without a queue message: the workflow engine's local path, which
   * records the invocation durably itself and falls back to the queue when this attempt fails.
   */
  run(
    name: string,
    reg: RegisteredFunction | undefined,
    input: unknown,
    options: { priority: number; key?: string; invocationId: string },
  ): { result: Promise<DirectResult>; abort: () => void } {
    const askedAt = Date.now();
    const started = this.start(name, reg, input, options);
    // The result never rejects: every failure is a DirectResult.
    if (reg) void started.result.then((r) => this.host.observed(reg, r, askedAt));
    return started;
  }

  private start(
    name: string,
    reg: RegisteredFunction | undefined,
    input: unknown,
    options: { priority: number; key?: string; invocationId: string },
  ): { result: Promise<DirectResult>; abort: () => void } {
    const dispatcher = this.host.dispatcher();
    if (!reg || !dispatcher)
      return {
        result: Promise.resolve({
          ok: false,
          error: new FunctionFailure('platform', `function "${name}" is not running on this node`, {
            function: name,
          }),
        }),
        abort: () => undefined,
      };
    const o = reg.def.options;
    if (o.batch) return this.directBatched(reg, o.batch, input, options);
    const id = this.host.nextId();
    const { output, run } = this.dispatch(dispatcher, reg, id, {
      priority: options.priority,
      ...(options.key !== undefined && { key: options.key }),
      input,
      batch: false,
      invocationId: options.invocationId,
      count: 1,
    });
    const result = output.then(
      (output): DirectResult => {
        const info = run();
        return { ok: true, output, ...(info && { run: info }) };
      },
      (e: unknown): DirectResult => {
        const info = run();
        return { ok: false, error: asFailure(e, reg.name), ...(info && { run: info }) };
      },
    );
    return { result, abort: () => dispatcher.abort(id) };
  }

  /**
   * The local path of a batch function: invocations are gathered as on the queued path (up to `max`, for at
   * most `waitMs`), so work a workflow runs locally still reaches the handler in batches.
   */
  private directBatched(
    reg: RegisteredFunction,
    batch: { max: number; waitMs: number },
    input: unknown,
    options: { priority: number; key?: string; invocationId: string },
  ): { result: Promise<DirectResult>; abort: () => void } {
    let g = this.gatherers.get(reg.name);
    if (!g) {
      g = new Gatherer<DirectItem>(batch.max, batch.waitMs, (items) => this.runDirectBatch(reg, items));
      this.gatherers.set(reg.name, g);
    }
    let settle!: (r: DirectResult) => void;
    const result = new Promise<DirectResult>((resolve) => (settle = resolve));
    const item: DirectItem = {
      input,
      priority: options.priority,
      invocationId: options.invocationId,
      settle,
    };
    g.add(item);
    const abort = (): void => {
      if (item.job === undefined) {
        item.withdrawn = true;
        settle({
          ok: false,
          error: new FunctionFailure('platform', 'withdrawn before it started', { function: reg.name }),
        });
      } else this.host.dispatcher()?.abort(item.job);
    };
    return { result, abort };
  }

  private runDirectBatch(reg: RegisteredFunction, gathered: DirectItem[]): void {
    const items = gathered.filter((i) => !i.withdrawn);
    const dispatcher = this.host.dispatcher();
    if (items.length === 0) return;
    if (!dispatcher) {
      for (const i of items)
        i.settle({
          ok: false,
          error: new FunctionFailure('platform', 'the runtime stopped', { function: reg.name }),
        });
      return;
    }
    const id = this.host.nextId();
    for (const i of items) i.job = id;
    const { output, run } = this.dispatch(dispatcher, reg, id, {
      priority: Math.min(...items.map((i) => i.priority)),
      input: items.map((i) => i.input),
      batch: true,
      invocationId: items[0]!.invocationId,
      count: items.length,
    });
    output.then(
      (output) => {
        const info = run();
        const { outputs, failed } = output as BatchAnswer;
        items.forEach((item, n) => {
          const error = failed?.[n];
          item.settle(
            error
              ? {
                  ok: false,
                  error: FunctionFailure.fromSerialized(reg.name, error),
                  ...(info && { run: info }),
                }
              : { ok: true, output: outputs[n], ...(info && { run: info }) },
          );
        });
      },
      (e: unknown) => {
        const info = run();
        const error = asFailure(e, reg.name);
        for (const i of items) i.settle({ ok: false, error, ...(info && { run: info }) });
      },
    );
  }

  /** One handler call on a local runner: what it answered, and when and where it ran once it settles. */
  private dispatch(
    dispatcher: Dispatcher,
    reg: RegisteredFunction,
    id: string,
    call: {
      priority: number;
      key?: string;
      input: unknown;
      batch: boolean;
      invocationId: string;
      count: number;
    },
  ): { output: Promise<unknown>; run: () => RunInfo | undefined } {
    const o = reg.def.options;
    this.host.countCall(reg.name);
    let startedAt: number | undefined;
    let worker: string | undefined;
    const logs = this.host.newLogs();
    const output = dispatcher.run({
      id,
      pool: o.pool,
      priority: call.priority,
      fn: reg.name,
      ...(call.key !== undefined && { key: call.key }),
      slots: o.shape.cpu,
      opportunistic: o.opportunistic,
      workers: this.host.workers(reg),
      timeoutMs: o.timeoutMs,
      onStart: (runner) => {
        startedAt = Date.now();
        worker = runner.name;
      },
      onLog: logs.add,
      input: {
        ref: reg.ref,
        input: call.input,
        batch: call.batch,
        attempt: 1,
        invocationId: call.invocationId,
      },
    });
    return { output, run: () => firstRun(startedAt, call.count, o.runtime, logs, worker) };
  }

  /** Hands over what waits to be gathered. */
  close(): void {
    for (const g of this.gatherers.values()) g.close();
  }
}

/** A first attempt's run on this node, once a worker took it. */
function firstRun(
  startedAt: number | undefined,
  batch: number,
  runtime: RunInfo['runtime'],
  logs: RunLogs,
  worker: string | undefined,
): RunInfo | undefined {
  if (startedAt === undefined) return undefined;
  return {
    startedAt,
    finishedAt: Date.now(),
    attempt: 1,
    node: NODE_NAME,
    ...(worker !== undefined && { worker }),
    batch,
    runtime,
    ...logs.info(),
  };
}
