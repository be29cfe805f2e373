import { createHash } from 'node:crypto';
import { availableParallelism, totalmem } from 'node:os';
import { join } from 'node:path';
import { passThrough, readEnv } from '../env.js';
import { CosmosError, InvalidArgumentError } from '../errors.js';
import type { Queue } from '../queue/queue.js';
import type { EnqueueResult, LeasedMessage } from '../types.js';
import { Backoff, pause } from '../queue/backoff.js';
import { retryDelay } from './backoff.js';
import { bundle } from './bundler.js';
import { DirectPath, NODE_NAME, type DirectResult, type RunInfo } from './direct.js';
import { RunLogs } from './run-logs.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { Dispatcher } from './dispatcher.js';
import { z } from 'zod';
import { FUNCTION_DEFAULTS, fn, type FunctionDefinition } from './define.js';
import { CommandRunner } from './runtimes/command-runner.js';
import type { CommandDefinition } from './runtimes/command.js';
import { asFailure, FunctionFailure } from './failure.js';
import type { BlobRef, BlobStore } from '../store/blobs/blob-store.js';
import { FileIo, type LocalFiles } from './files.js';
import { Gatherer } from './gather.js';
import type { BatchAnswer } from './protocol.js';
import { FunctionRegistry, type RegisteredFunction } from './registry.js';
import { SandboxRunner } from './runtimes/sandbox-runner.js';
import { ThreadRunner } from './runtimes/thread-runner.js';
import { SlotScheduler, type PoolConfig } from './scheduler/slot-scheduler.js';
import { WorkerPool } from './worker-pool.js';

export type { DirectResult, RunInfo } from './direct.js';

/** The payload of an invocation message. */
export interface InvocationPayload {
  fn: string;
  /** The function version it was made for. */
  v: string;
  input: unknown;
  key?: string;
  /** A queue that gets the result as a message (idempotent per invocation). */
  replyTo?: string;
  /** The reply's exclusivity key (the workflow engine's: the execution id). */
  replyKey?: string;
  /** Opaque to the runtime, returned in the reply (the workflow engine's request id). */
  tag?: unknown;
}

/** One attempt that ran: when it was asked for, how long it waited and ran, and how it failed if it did. */
export interface RunObservation {
  function: string;
  pool: string;
  run: RunInfo;
  /** From when it could run (queued: available; local: asked) until a worker took it. */
  waitMs: number;
  failure?: FunctionFailure['failure'];
}

export interface InvocationResult {
  messageId: number;
  function: string;
  version: string;
  attempt: number;
  ok: boolean;
  output?: unknown;
  error?: FunctionFailure;
  /** False when another attempt is scheduled. */
  final: boolean;
  /** How many invocations shared the handler call (micro-batching). */
  batchSize: number;
  /** The handler call it was part of: invocations of one batch share it. */
  call: number;
  /** Files the handler wrote, stored as blobs, by path under its output directory. */
  files?: Record<string, BlobRef>;
  /** When and where the attempt ran; results are emitted in commit order, which is not start order. */
  run?: RunInfo;
}

export interface InvokeOptions {
  priority?: number;
  key?: string;
  idempotencyKey?: string;
  replyTo?: string;
  replyKey?: string;
  tag?: unknown;
  version?: string;
  /** Wait this long before the first attempt. */
  delayMs?: number;
  /** Attempts this message may take (default: the function's). */
  maxAttempts?: number;
}

export interface FunctionRuntimeOptions {
  /** Where failed attempts and stopped loops are reported, with their ids (default: warnings and up). */
  logger?: Logger;
  /** Rewrites each line a function prints before it is kept (the redaction hook, see RedactOptions). */
  redactLine?: (text: string) => string;
  /** Slots on this node (default: its cores). */
  capacity?: number;
  /** Scheduling pools; a pool a function names that is missing here is added under the root. */
  pools?: PoolConfig[];
  /** Warm capacity: worker threads started up front per pool. */
  warm?: Record<string, number>;
  /**
   * The pools whose functions this node fetches and runs (a worker's `--pools`). Default: all of them. An
   * empty list makes a node that only records invocations for others to run (an API/engine node).
   */
  servePools?: string[];
  /** Where function bundles are written (default ./.cosmos/bundles). */
  bundleDir?: string;
  /** Memory the node's runners may take together (default 75% of the machine). */
  memoryMb?: number;
  /** Runners above warm capacity stop after this long idle (default 30 s). */
  idleMs?: number;
  /** Fallback poll when no wake-up arrives (default 1 s). */
  pollMs?: number;
  /** Lease of a fetched invocation; kept alive while it waits or runs (default 30 s). */
  leaseMs?: number;
  /** Where function file outputs are stored; required by functions with file I/O. */
  blobs?: BlobStore;
  /** Local directory for file inputs and outputs while invocations run (default ./.cosmos/work). */
  workDir?: string;
}

interface Invocation {
  msg: LeasedMessage<InvocationPayload>;
  reg: RegisteredFunction;
}

interface Work {
  reg: RegisteredFunction;
  invocations: Invocation[];
  call: number;
  files?: LocalFiles;
  /** When a runner took it. */
  startedAt?: number;
  /** When the handler call answered or failed. */
  finishedAt?: number;
  worker?: string;
  logs: RunLogs;
}

/**
 * The function layer on one node (SPEC §6): it fetches invocation messages from the queue, orders them across
 * pools with the slot scheduler, runs them on warm runners, and settles each message: completed, retried
 * after a backoff, or errored when its class allows no retry or its attempts are spent.
 */
export class FunctionRuntime {
  readonly registry = new FunctionRegistry();
  private readonly fileIo: FileIo | undefined;
  private readonly commands = new Map<string, CommandDefinition>();
  private readonly log: Logger;
  private readonly redactLine: ((text: string) => string) | undefined;
  private readonly newLogs = (): RunLogs => new RunLogs(this.redactLine);
  private readonly o: Required<
    Omit<
      FunctionRuntimeOptions,
      'pools' | 'warm' | 'blobs' | 'workDir' | 'logger' | 'redactLine' | 'servePools'
    >
  > & {
    servePools: Set<string> | undefined;
    pools: PoolConfig[];
    warm: Record<string, number>;
  };
  private dispatcher: Dispatcher | undefined;
  private readonly workerPools = new Map<string, WorkerPool>();
  private readonly works = new Map<string, Work>();
  private readonly gatherers = new Map<string, Gatherer<Invocation>>();
  private readonly direct = new DirectPath({
    dispatcher: () => this.dispatcher,
    workers: (reg) => this.poolFor(reg),
    countCall: (name) => this.countCall(name),
    nextId: () => `d${this.nextWork++}`,
    newLogs: () => this.newLogs(),
    observed: (reg, r, askedAt) => {
      if (r.run) this.observe(reg, { run: r.run, askedAt, ...(!r.ok && { failure: r.error.failure }) });
    },
  });
  private readonly calls = new Map<string, number>();
  private readonly waitingByFn = new Map<string, number>();
  private readonly loops = new Map<string, Promise<void>>();
  private readonly listeners: ((r: InvocationResult) => void)[] = [];
  private readonly runListeners: ((o: RunObservation) => void)[] = [];
  private readonly slotWaiters: (() => void)[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private abort = new AbortController();
  private keeper: NodeJS.Timeout | undefined;
  private nextWork = 1;
  private running = false;

  constructor(
    private readonly queue: Queue,
    options: FunctionRuntimeOptions = {},
  ) {
    this.o = {
      capacity: options.capacity ?? availableParallelism(),
      pools: options.pools ?? [],
      warm: options.warm ?? {},
      bundleDir: options.bundleDir ?? join('.cosmos', 'bundles'),
      memoryMb: options.memoryMb ?? Math.floor((totalmem() / 1024 / 1024) * 0.75),
      idleMs: options.idleMs ?? 30_000,
      pollMs: options.pollMs ?? 1_000,
      leaseMs: options.leaseMs ?? 30_000,
      servePools: options.servePools && new Set(options.servePools),
    };
    this.log = options.logger ?? createLogger('warn');
    this.redactLine = options.redactLine;
    if (options.blobs) this.fileIo = new FileIo(options.blobs, options.workDir ?? join('.cosmos', 'work'));
    // Native addons such as sharp run on libuv's thread pool, shared by every worker of the process and sized
    // once at start-up (4 by default): past 4 slots such functions would queue there, not run.
    const uvThreads = readEnv().uvThreadpoolSize;
    if (this.o.capacity > uvThreads)
      process.emitWarning(
        `the function runtime has ${this.o.capacity} slots but libuv's thread pool has ${uvThreads} threads; start the process with UV_THREADPOOL_SIZE=${this.o.capacity} so native functions (sharp) can use every slot`,
        { code: 'COSMOS_UV_THREADPOOL' },
      );
  }

  /** Bundles the module that defines the function and registers that version under `name`. */
  async register(
    name: string,
    def: FunctionDefinition,
    source: { module: string },
  ): Promise<RegisteredFunction> {
    const b = await bundle(source.module, this.o.bundleDir);
    const reg = this.registry.add(name, def.options.version ?? b.hash, def, {
      module: b.path,
      name: exportName(name),
    });
    if (this.running) {
      this.ensurePool(reg);
      this.startLoop(reg);
    }
    return reg;
  }

  /**
   * Registers a `command` function (an executable run on files, see commandFn). Its version is its
   * definition's content; `files` names input properties holding blob references, as for fn().
   */
  registerCommand(
    name: string,
    command: CommandDefinition,
    options: { files?: string[] } = {},
  ): RegisteredFunction {
    if (options.files && !this.fileIo)
      throw new InvalidArgumentError(
        `command ${name} uses file I/O: give the runtime a blob store (options.blobs)`,
      );
    const base = fn(
      {
        input: command.input,
        output: command.output ?? z.unknown(),
        pool: command.pool,
        timeoutMs: command.timeoutMs,
        attempts: command.attempts,
        ...(options.files && { files: { inputs: options.files } }),
      },
      () => {
        throw new Error('a command function runs its executable, not a handler');
      },
    );
    const def: FunctionDefinition = { ...base, options: { ...base.options, runtime: 'command' } };
    const version = createHash('sha256')
      .update(JSON.stringify([command.command, command.args.toString(), command.env, options.files ?? []]))
      .digest('hex')
      .slice(0, 16);
    this.commands.set(exportName(name), command);
    const reg = this.registry.add(name, version, def, { module: 'command:', name: exportName(name) });
    if (this.running) {
      this.ensurePool(reg);
      this.startLoop(reg);
    }
    return reg;
  }

  /** Validates the input against the current version's schema and enqueues the invocation. */
  async invoke(name: string, input: unknown, options: InvokeOptions = {}): Promise<EnqueueResult> {
    const reg = this.registry.get(name, options.version);
    if (!reg) throw new CosmosError('function_not_found', `function "${name}" is not registered`, { name });
    const parsed = reg.def.input.safeParse(input);
    if (!parsed.success)
      throw new CosmosError('function_input_invalid', `input of ${name} does not match its schema`, {
        issues: parsed.error.issues.map((i) => ({ path: i.path.map(String), message: i.message })),
      });
    return this.queue.enqueue(reg.queue, payloadOf(reg, input, options), {
      maxAttempts: options.maxAttempts ?? reg.def.options.attempts,
      ...(options.delayMs !== undefined && { delayMs: options.delayMs }),
      ...(options.priority !== undefined && { priority: options.priority }),
      ...(options.idempotencyKey !== undefined && { idempotencyKey: options.idempotencyKey }),
    });
  }

  /** The queue and payload an invocation of `name` travels as, for callers that write it in their own commit. */
  invocationMessage(
    name: string,
    input: unknown,
    options: Pick<InvokeOptions, 'key' | 'replyTo' | 'replyKey' | 'tag'> = {},
  ): { queue: string; payload: InvocationPayload; maxAttempts: number } | undefined {
    const reg = this.registry.get(name);
    if (!reg) return undefined;
    return {
      queue: reg.queue,
      payload: payloadOf(reg, input, options),
      maxAttempts: reg.def.options.attempts,
    };
  }

  /** Whether this node should take `name` itself now rather than leave it on the queue for any node. */
  canRunDirect(name: string): boolean {
    const reg = this.registry.get(name);
    // Files are materialized and collected on the queued path only.
    if (!reg || !this.dispatcher || !this.running || reg.def.options.files || !this.serves(reg)) return false;
    // The local scheduler is the buffer: a caller that recorded the invocation durably loses nothing if this
    // node dies with it waiting here. Past a bound, the queue spreads the work to other nodes instead.
    return this.dispatcher.scheduler.waiting(reg.def.options.pool) < this.o.capacity * 64;
  }

  /**
   * Runs one attempt on this node's workers without a queue message: the workflow engine's local path, which
   * records the invocation durably itself and falls back to the queue when this attempt fails.
   */
  runDirect(
    name: string,
    input: unknown,
    options: { priority: number; key?: string; invocationId: string },
  ): { result: Promise<DirectResult>; abort: () => void } {
    return this.direct.run(name, this.registry.get(name), input, options);
  }

  /** Handler calls made per function on this node since it started (a batch is one call). */
  handlerCallCounts(): Record<string, number> {
    return Object.fromEntries(this.calls);
  }

  private countCall(name: string): void {
    this.calls.set(name, (this.calls.get(name) ?? 0) + 1);
  }

  /** Asks a running invocation (by its message id) to stop, or withdraws it if it has not started. */
  cancelInvocation(messageId: number): void {
    for (const [id, work] of this.works)
      if (work.invocations.some((i) => i.msg.id === messageId)) this.dispatcher?.abort(id);
  }

  onResult(listener: (r: InvocationResult) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Keeps at least `n` workers started in a pool's thread runners. Applies to pools created from now on,
   * which is every pool when called before start().
   */
  keepWarm(pool: string, n: number): void {
    this.o.warm[pool] = Math.max(this.o.warm[pool] ?? 0, n);
  }

  /** Starts warm capacity, then fetching for every registered function. */
  async start(): Promise<void> {
    if (this.running) return;
    const pools = new Map(this.o.pools.map((p) => [p.name, p]));
    for (const reg of this.registry.list())
      if (!pools.has(reg.def.options.pool)) pools.set(reg.def.options.pool, { name: reg.def.options.pool });
    for (const name of Object.keys(this.o.warm)) if (!pools.has(name)) pools.set(name, { name });
    this.dispatcher = new Dispatcher(
      new SlotScheduler({ capacity: this.o.capacity, pools: [...pools.values()] }),
    );
    this.running = true;
    this.abort = new AbortController();
    for (const reg of this.registry.list()) if (this.serves(reg)) this.ensurePool(reg);
    for (const name of Object.keys(this.o.warm))
      if (this.o.servePools?.has(name) ?? true) this.threadPool(name, FUNCTION_DEFAULTS.shape.memoryMb);
    await Promise.all([...this.workerPools.values()].map((p) => p.warm()));
    for (const reg of this.registry.list()) this.startLoop(reg);
    this.keeper = setInterval(() => void this.keepLeases(), Math.max(100, this.o.leaseMs / 3));
    this.keeper.unref();
  }

  /**
   * Stops fetching, gives back invocations that did not start, waits for running ones, stops the runners.
   * With `drainMs`, running invocations get that long to finish; those still running then are given back to
   * the queue (another node runs them at once instead of after their lease) and their runners stopped.
   */
  async stop(options: { drainMs?: number } = {}): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.abort.abort();
    this.wakeFetchers();
    await Promise.allSettled(this.loops.values());
    this.loops.clear();
    for (const g of this.gatherers.values()) g.close();
    this.direct.close();
    const unstarted: Invocation[] = [];
    for (const [id, work] of this.works)
      if (this.dispatcher!.cancel(id)) {
        this.works.delete(id);
        unstarted.push(...work.invocations);
      }
    if (unstarted.length > 0)
      await this.queue.release(unstarted.map((i) => i.msg.lease)).catch(() => undefined);
    if (options.drainMs === undefined) await Promise.allSettled(this.inFlight);
    else {
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([
        Promise.allSettled(this.inFlight).then(() => false),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(true), options.drainMs))),
      ]);
      clearTimeout(timer);
      if (late) {
        // Their answers are ignored from here on: the works are gone, and the leases given back.
        const given = [...this.works.values()].flatMap((w) => w.invocations.map((i) => i.msg.lease));
        this.works.clear();
        this.log.warn({ invocations: given.length }, 'drain timed out; giving running invocations back');
        await this.queue.release(given).catch(() => undefined);
      }
    }
    if (this.keeper) clearInterval(this.keeper);
    await Promise.all([...this.workerPools.values()].map((p) => p.close()));
    this.workerPools.clear();
  }

  /** Runner statistics per worker pool (starts on the invocation path, replacements, live runners). */
  /** Per pool: slots taken by running handler calls, calls waiting for one, live workers; and the node's slots. */
  slotUse(): {
    capacity: number;
    pools: { pool: string; running: number; waiting: number; workers: number }[];
  } {
    const s = this.dispatcher?.scheduler;
    const names = new Set([
      ...this.registry.list().map((r) => r.def.options.pool),
      ...Object.keys(this.o.warm),
    ]);
    // A pool the scheduler does not know yet (registered since it started) has nothing running or waiting.
    const count = (f: () => number | undefined): number => {
      try {
        return f() ?? 0;
      } catch {
        return 0;
      }
    };
    const pools = [...names].sort().map((pool) => ({
      pool,
      running: count(() => s?.running(pool)),
      waiting: count(() => s?.waiting(pool)),
      workers: [...this.workerPools.entries()]
        .filter(([key]) => key.endsWith(`:${pool}`))
        .reduce((n, [, p]) => n + p.stats.live, 0),
    }));
    return { capacity: this.o.capacity, pools };
  }

  poolStats(): Record<string, WorkerPool['stats']> {
    return Object.fromEntries([...this.workerPools].map(([k, p]) => [k, { ...p.stats }]));
  }

  /** Whether this node runs the function's pool (see `servePools`). */
  serves(reg: RegisteredFunction): boolean {
    return this.o.servePools?.has(reg.def.options.pool) ?? true;
  }

  private startLoop(reg: RegisteredFunction): void {
    if (this.loops.has(reg.name) || !this.serves(reg)) return;
    const loop = this.fetchLoop(reg.name).catch((e: unknown) => {
      if (this.running)
        this.log.error({ err: e, function: reg.name }, 'function runtime: fetch loop stopped');
    });
    this.loops.set(reg.name, loop);
  }

  /** Keeps up to a batch per free slot waiting locally, so a freed slot never waits for a round trip. */
  private async fetchLoop(name: string): Promise<void> {
    const signal = this.abort.signal;
    const backoff = new Backoff();
    while (this.running) {
      const reg = this.registry.get(name)!;
      const perSlot = reg.def.options.batch?.max ?? 1;
      const room = this.o.capacity * perSlot * 2 - (this.waitingByFn.get(name) ?? 0);
      if (room <= 0) {
        await new Promise<void>((r) => this.slotWaiters.push(r));
        continue;
      }
      let msgs: LeasedMessage<InvocationPayload>[];
      try {
        msgs = await this.queue.dequeue<InvocationPayload>({
          queue: reg.queue,
          max: Math.min(room, 1_000),
          leaseMs: this.o.leaseMs,
        });
        if (msgs.length === 0) await this.queue.waitForWork(reg.queue, { timeoutMs: this.o.pollMs, signal });
        if (backoff.failures > 0)
          this.log.info({ function: name }, 'function runtime: the store answers again');
        backoff.reset();
      } catch (error) {
        // The database restarting or failing over: keep fetching, waiting longer after each failure.
        if (backoff.failures === 0)
          this.log.warn(
            { err: error, function: name },
            'function runtime: cannot fetch invocations; retrying with backoff',
          );
        await pause(backoff.next(), signal);
        continue;
      }
      if (msgs.length === 0) continue;
      for (const msg of msgs) this.accept(msg);
    }
  }

  private accept(msg: LeasedMessage<InvocationPayload>): void {
    const reg = this.registry.get(msg.payload.fn, msg.payload.v) ?? this.registry.get(msg.payload.fn)!;
    this.waitingByFn.set(reg.name, (this.waitingByFn.get(reg.name) ?? 0) + 1);
    const inv = { msg, reg };
    const batch = reg.def.options.batch;
    const files = reg.def.options.files;
    if (files && this.fileIo) {
      this.fileIo.prepare(reg.name, String(msg.id), msg.attempts, msg.payload.input, files.inputs).then(
        (local) => this.submit(reg, [inv], local),
        (e: unknown) => {
          const f = asFailure(e, reg.name);
          const work = { reg, invocations: [inv], call: 0, logs: this.newLogs() };
          void this.persist(() => this.failed(inv, f, work), reg.name).finally(() => this.unwait(reg, 1));
        },
      );
      return;
    }
    if (!batch) return this.submit(reg, [inv]);
    let g = this.gatherers.get(reg.name);
    if (!g) {
      g = new Gatherer<Invocation>(batch.max, batch.waitMs, (invs) => this.submit(invs[0]!.reg, invs));
      this.gatherers.set(reg.name, g);
    }
    g.add(inv);
  }

  private submit(reg: RegisteredFunction, invocations: Invocation[], files?: LocalFiles): void {
    const call = this.nextWork++;
    this.countCall(reg.name);
    const id = `w${call}`;
    const work: Work = { reg, invocations, call, logs: this.newLogs(), ...(files && { files }) };
    this.works.set(id, work);
    const o = reg.def.options;
    const workers = this.poolFor(reg);
    const first = invocations[0]!.msg;
    const batch = o.batch !== undefined;
    const key = invocations.length === 1 ? first.payload.key : undefined;
    const p = this.dispatcher!.run({
      id,
      pool: o.pool,
      priority: Math.min(...invocations.map((i) => i.msg.priority)),
      fn: reg.name,
      ...(key !== undefined && { key }),
      slots: o.shape.cpu,
      opportunistic: o.opportunistic,
      workers,
      timeoutMs: o.timeoutMs,
      onStart: (runner) => {
        work.startedAt = Date.now();
        work.worker = runner.name;
      },
      onLog: work.logs.add,
      input: {
        ref: reg.ref,
        input: batch ? invocations.map((i) => i.msg.payload.input) : first.payload.input,
        batch,
        attempt: first.attempts,
        invocationId: String(first.id),
        ...(files && { files: { inputs: files.inputs, outDir: files.outDir } }),
      },
    });
    const settled = this.settle(id, work, p).finally(() => this.inFlight.delete(settled));
    this.inFlight.add(settled);
    const s = this.dispatcher!.scheduler;
    workers.scaleFor(s.waiting(o.pool) + s.running(o.pool));
  }

  /** Settles every invocation of a handler call: completed, retried after its backoff, or errored. */
  private async settle(id: string, work: Work, answer: Promise<unknown>): Promise<void> {
    const { reg, invocations } = work;
    // Settling (files, replies, completions) is not part of the run the trace and metrics report.
    const ended = (): void => void (work.finishedAt ??= Date.now());
    try {
      let outcome: () => Promise<unknown>;
      try {
        const output = await answer.finally(ended);
        if (reg.def.options.batch) {
          const { outputs, failed } = output as BatchAnswer;
          outcome = () =>
            Promise.all(
              invocations.map((inv, i) => {
                const error = failed?.[i];
                return error
                  ? this.failed(inv, FunctionFailure.fromSerialized(reg.name, error), work)
                  : this.succeed(inv, outputs[i], work);
              }),
            );
        } else {
          const stored = work.files && (await this.fileIo!.collect(work.files));
          await this.dropFiles(work);
          outcome = () => this.succeed(invocations[0]!, output, work, stored);
        }
      } catch (e) {
        if (!this.works.has(id)) return;
        const f = asFailure(e, reg.name);
        await this.dropFiles(work);
        outcome = () => Promise.all(invocations.map((inv) => this.failed(inv, f, work)));
      }
      await this.persist(outcome, reg.name);
    } finally {
      this.works.delete(id);
      await this.dropFiles(work);
      this.unwait(reg, invocations.length);
    }
  }

  /**
   * Writes an outcome, again and again while the store is away (a database restart), for as long as the
   * lease would have lasted: replies are keyed by invocation and completions by lease, so a repeat changes
   * nothing. After that the lease has lapsed and the invocation runs again elsewhere (at least once).
   */
  private async persist(write: () => Promise<unknown>, fn: string): Promise<void> {
    const giveUpAt = Date.now() + this.o.leaseMs;
    const backoff = new Backoff();
    for (;;) {
      try {
        await write();
        return;
      } catch (error) {
        if (Date.now() >= giveUpAt) {
          this.log.error(
            { err: error, function: fn },
            'function runtime: could not record an outcome before its lease lapsed; the invocation runs again',
          );
          return;
        }
        if (backoff.failures === 0)
          this.log.warn(
            { err: error, function: fn },
            'function runtime: recording an outcome failed; retrying',
          );
        await pause(backoff.next());
      }
    }
  }

  /** An attempt's directory goes before anyone hears of its outcome; what it produced is in blobs by then. */
  private async dropFiles(work: Work): Promise<void> {
    const files = work.files;
    if (!files) return;
    delete work.files;
    await this.fileIo!.discard(files).catch(() => undefined);
  }

  /** Room to fetch opens when invocations are settled, not when their slot freed. */
  private unwait(reg: RegisteredFunction, n: number): void {
    this.waitingByFn.set(reg.name, (this.waitingByFn.get(reg.name) ?? 0) - n);
    this.wakeFetchers();
  }

  private wakeFetchers(): void {
    for (const w of this.slotWaiters.splice(0)) w();
  }

  private async succeed(
    inv: Invocation,
    output: unknown,
    work: Work,
    files?: Record<string, BlobRef>,
  ): Promise<void> {
    await this.reply(inv, { ok: true, output, ...(files && { files }) }, work);
    await this.queue.complete(inv.msg.lease);
    this.emit(inv, work, { ok: true, output, final: true, ...(files && { files }) });
  }

  private async failed(inv: Invocation, f: FunctionFailure, work: Work): Promise<void> {
    // The message's own limit: a caller may have spent attempts before queueing it (a local first attempt).
    const final = !f.retryable || inv.msg.attempts >= inv.msg.maxAttempts;
    const tag = inv.msg.payload.tag as { x?: unknown } | undefined;
    const x = typeof tag?.x === 'string' ? tag.x : undefined;
    this.log.warn(
      {
        function: inv.reg.name,
        invocationId: inv.msg.id,
        attempt: inv.msg.attempts,
        class: f.failure,
        final,
        ...(x !== undefined && { executionId: x, traceId: x.split('.')[0] }),
        err: { code: f.code, message: f.message },
      },
      final ? 'invocation failed for good' : 'invocation attempt failed; it will be retried',
    );
    if (final) {
      await this.reply(inv, { ok: false, error: f.toJSON() }, work);
      await this.queue.fail(inv.msg.lease, f, { final: true });
    } else {
      const delay = retryDelay(inv.reg.def.options.backoff, inv.msg.attempts + 1);
      await this.queue.fail(inv.msg.lease, f, { retryDelayMs: delay });
    }
    this.emit(inv, work, { ok: false, error: f, final });
  }

  /** The result message is enqueued before the invocation completes, keyed by it, so a retry cannot duplicate it. */
  private async reply(inv: Invocation, body: Record<string, unknown>, work: Work): Promise<void> {
    const to = inv.msg.payload.replyTo;
    if (to === undefined) return;
    const p = inv.msg.payload;
    const run = runOf(inv, work);
    await this.queue.enqueue(
      to,
      {
        messageId: inv.msg.id,
        fn: inv.reg.name,
        version: inv.reg.version,
        ...(p.tag !== undefined && { tag: p.tag }),
        ...body,
        ...(run && { run }),
      },
      {
        idempotencyKey: `result:${inv.msg.id}`,
        priority: inv.msg.priority,
        ...(p.replyKey !== undefined && { exclusivityKey: p.replyKey }),
      },
    );
  }

  private emit(
    inv: Invocation,
    work: Work,
    r: Pick<InvocationResult, 'ok' | 'output' | 'error' | 'final' | 'files'>,
  ): void {
    const run = runOf(inv, work);
    const result: InvocationResult = {
      messageId: inv.msg.id,
      function: inv.reg.name,
      version: inv.reg.version,
      attempt: inv.msg.attempts,
      batchSize: work.invocations.length,
      call: work.call,
      ...r,
      ...(run && { run }),
    };
    for (const l of this.listeners) l(result);
    if (run)
      this.observe(inv.reg, {
        run,
        askedAt: Math.max(inv.msg.createdAt, inv.msg.visibleAt),
        ...(r.error && { failure: r.error.failure }),
      });
  }

  /** Every attempt that ran, on either path: what the metrics' wait and run histograms are made of. */
  onRun(listener: (o: RunObservation) => void): void {
    this.runListeners.push(listener);
  }

  private observe(
    reg: RegisteredFunction,
    o: { run: RunInfo; askedAt: number; failure?: FunctionFailure['failure'] },
  ): void {
    if (this.runListeners.length === 0) return;
    const observation: RunObservation = {
      function: reg.name,
      pool: reg.def.options.pool,
      run: o.run,
      waitMs: Math.max(0, o.run.startedAt - o.askedAt),
      ...(o.failure && { failure: o.failure }),
    };
    for (const l of this.runListeners) l(observation);
  }

  /** Leases of fetched invocations (waiting or running) are extended together, one call per round. */
  private async keepLeases(): Promise<void> {
    const leases = [...this.works.values()].flatMap((w) => w.invocations.map((i) => i.msg.lease));
    if (leases.length > 0) await this.queue.extend(leases, this.o.leaseMs).catch(() => undefined);
  }

  private ensurePool(reg: RegisteredFunction): void {
    const pool = reg.def.options.pool;
    const o = reg.def.options;
    if (o.shape.cpu > this.o.capacity)
      throw new InvalidArgumentError(
        `function ${reg.name} needs ${o.shape.cpu} slots (shape.cpu) but this node has ${this.o.capacity}`,
      );
    if (o.concurrency.max !== undefined || o.concurrency.perKey !== undefined)
      this.dispatcher?.scheduler.setLimit(reg.name, o.concurrency);
    if (this.dispatcher && !this.dispatcher.scheduler.snapshot().pools.some((p) => p.name === pool))
      throw new InvalidArgumentError(
        `function ${reg.name} runs in pool "${pool}", which this node does not have; add it to the runtime's pools`,
      );
    this.poolFor(reg);
  }

  private poolFor(reg: RegisteredFunction): WorkerPool {
    const o = reg.def.options;
    if (o.runtime === 'thread') return this.threadPool(o.pool, o.shape.memoryMb);
    if (o.runtime === 'command') {
      let p = this.workerPools.get('command');
      if (!p) {
        // One in-node runner for every command: its runs are separate processes, bounded by the slots.
        p = new WorkerPool({
          label: 'command',
          min: 0,
          max: 1,
          perRunner: Number.MAX_SAFE_INTEGER,
          idleMs: 0,
          spawn: () => new CommandRunner(this.commands),
        });
        this.workerPools.set('command', p);
      }
      return p;
    }
    const key = `sandbox:${reg.ref.module}`;
    let p = this.workerPools.get(key);
    if (!p) {
      const env = passThrough(o.sandbox.env);
      p = new WorkerPool({
        label: key,
        min: 0,
        max: this.maxRunners(o.shape.memoryMb),
        perRunner: 1,
        idleMs: this.o.idleMs,
        spawn: () =>
          SandboxRunner.start({
            bundle: reg.ref.module,
            memoryMb: o.shape.memoryMb,
            env,
            allowRead: o.sandbox.allowRead,
          }),
      });
      this.workerPools.set(key, p);
    }
    return p;
  }

  private threadPool(pool: string, memoryMb: number): WorkerPool {
    const key = `thread:${pool}`;
    let p = this.workerPools.get(key);
    if (!p) {
      // A pool's threads are sized for the hungriest function registered in it.
      const mem = Math.max(
        memoryMb,
        ...this.registry
          .list()
          .filter((r) => r.def.options.pool === pool)
          .map((r) => r.def.options.shape.memoryMb),
      );
      p = new WorkerPool({
        label: key,
        min: this.o.warm[pool] ?? 0,
        max: this.maxRunners(mem),
        perRunner: 1,
        idleMs: this.o.idleMs,
        spawn: () => ThreadRunner.start({ memoryMb: mem }),
      });
      this.workerPools.set(key, p);
    }
    return p;
  }

  private maxRunners(memoryMb: number): number {
    return Math.max(1, Math.min(this.o.capacity, Math.floor(this.o.memoryMb / memoryMb)));
  }
}

/** A registered name may carry a service prefix (encoder.encode); the bundle exports the last part. */
/** An invocation's message payload: the function at its version, the input, and where the answer goes. */
function payloadOf(
  reg: RegisteredFunction,
  input: unknown,
  options: Pick<InvokeOptions, 'key' | 'replyTo' | 'replyKey' | 'tag'>,
): InvocationPayload {
  const payload: InvocationPayload = { fn: reg.name, v: reg.version, input };
  if (options.key !== undefined) payload.key = options.key;
  if (options.replyTo !== undefined) payload.replyTo = options.replyTo;
  if (options.replyKey !== undefined) payload.replyKey = options.replyKey;
  if (options.tag !== undefined) payload.tag = options.tag;
  return payload;
}

function exportName(name: string): string {
  return name.slice(name.lastIndexOf('.') + 1);
}

/** When and where a queued invocation's handler call ran (none when it never reached a runner). */
function runOf(inv: Invocation, work: Work): RunInfo | undefined {
  if (work.startedAt === undefined) return undefined;
  return {
    startedAt: work.startedAt,
    finishedAt: work.finishedAt ?? Date.now(),
    attempt: inv.msg.attempts,
    node: NODE_NAME,
    ...(work.worker !== undefined && { worker: work.worker }),
    batch: work.invocations.length,
    runtime: work.reg.def.options.runtime,
    ...work.logs.info(),
  };
}
