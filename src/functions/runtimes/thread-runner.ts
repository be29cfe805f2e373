import { Worker } from 'node:worker_threads';
import { runnerEntry } from '../bundler.js';
import { FunctionFailure, notJson, type FailureClass } from '../failure.js';
import {
  RUN,
  RUN_MANY,
  type CompactOk,
  type CompactRun,
  type CompactRunMany,
  type FromRunner,
  type FunctionRef,
  type ManyAnswers,
  type ToRunner,
} from '../protocol.js';
import type { RunDone, RunInput, RunOptions, Runner } from './runner.js';

interface InFlight {
  fn: string;
  invocationId: string;
  options: RunOptions;
  deadline: number;
  done: RunDone<unknown>;
  token: unknown;
}

type Settlers = { resolve: (output: unknown) => void; reject: (e: unknown) => void };
/**
 * A failure found while sending is reported on a later tick, as a rejected promise would be: the caller may be
 * in the middle of starting a convoy.
 */
function failLater<T>(done: RunDone<T>, token: T, e: FunctionFailure): void {
  queueMicrotask(() => done(token, false, e));
}

const settlePromise: RunDone<Settlers> = (p, ok, value) => (ok ? p.resolve(value) : p.reject(value));

/**
 * A worker thread (SPEC §6: fast, trusted, the default). Its heap is capped at the function shape's memory, so
 * a runaway allocation kills this thread only; a timeout terminates the thread, since JavaScript cannot be
 * interrupted from outside any other way.
 */
export class ThreadRunner implements Runner {
  readonly kind = 'thread';
  readonly ready: Promise<void>;
  private worker: Worker | undefined;
  private readonly inFlight = new Map<number, InFlight>();
  private readonly deathListeners: ((reason: string) => void)[] = [];
  private nextId = 1;
  /** Functions this thread was told about, by handle, so a run message carries a number, not two paths. */
  private readonly handles = new Map<string, number>();
  private readonly handlesByRef = new WeakMap<FunctionRef, number>();
  /** One timer per runner, set for the earliest deadline: no timer work per run in the common case. */
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private isDead = false;
  /** Runs of this turn of the event loop, sent together (see RUN_MANY). */
  private outgoing: CompactRun[] = [];
  /** Set before terminating, so the exit is attributed to the right cause. */
  private cause: { failure: FailureClass; culprit?: number; reason: string } | undefined;

  get name(): string {
    return this.worker ? `thread ${this.worker.threadId}` : 'thread';
  }

  private constructor(memoryMb: number) {
    this.ready = runnerEntry('thread-entry').then(
      (entry) =>
        new Promise<void>((resolve, reject) => {
          if (this.isDead) return reject(new FunctionFailure('platform', 'runner closed before it started'));
          const w = new Worker(entry, {
            execArgv: [],
            resourceLimits: { maxOldGenerationSizeMb: memoryMb },
          });
          this.worker = w;
          const receive = (m: FromRunner | CompactOk): void => {
            // A batch's answer is JSON text (see CompactRun).
            if (Array.isArray(m)) this.onOk(m[0], m[3] === true ? JSON.parse(m[1] as string) : m[1], m[2]);
            else if (m.t === 'ready') resolve();
            else this.onMessage(m);
          };
          w.on('message', (m: FromRunner | CompactOk | ManyAnswers) => {
            if ('many' in m) for (const one of m.many) receive(one);
            else receive(m);
          });
          w.on('error', (e: Error & { code?: string }) => {
            if (e.code === 'ERR_WORKER_OUT_OF_MEMORY')
              this.cause = { failure: 'out_of_memory', reason: `out of memory (heap limit ${memoryMb} MB)` };
            else this.cause ??= { failure: 'worker_crash', reason: `worker error: ${e.message}` };
          });
          w.on('exit', (code) => {
            reject(new FunctionFailure('platform', `worker exited with code ${code} before it was ready`));
            this.die(this.cause ?? { failure: 'worker_crash', reason: `worker exited with code ${code}` });
          });
        }),
    );
    this.ready.catch(() => undefined);
  }

  static start(options: { memoryMb: number }): ThreadRunner {
    return new ThreadRunner(options.memoryMb);
  }

  get dead(): boolean {
    return this.isDead;
  }

  get load(): number {
    return this.inFlight.size;
  }

  run(input: RunInput, options: RunOptions): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) =>
      this.send(input, options, settlePromise, { resolve, reject }),
    );
  }

  send<T>(input: RunInput, options: RunOptions, done: RunDone<T>, token: T): void {
    if (this.isDead || !this.worker)
      return failLater(
        done,
        token,
        new FunctionFailure('worker_crash', 'the worker is not running', { function: input.ref.name }),
      );
    const id = this.nextId++;
    const fid = this.handleOf(input.ref);
    const deadline = performance.now() + options.timeoutMs;
    if (deadline < this.timerAt) this.armTimer(deadline);
    this.inFlight.set(id, {
      fn: input.ref.name,
      invocationId: input.invocationId,
      options,
      deadline,
      done: done as RunDone<unknown>,
      token,
    });
    // JSON would turn a batch item that is `undefined` as a whole (an optional input) into null: such a
    // batch goes by structured clone, as a run with files does.
    if (input.files === undefined && !(input.batch && (input.input as unknown[]).includes(undefined))) {
      let run: CompactRun;
      if (input.batch) {
        let text: string;
        try {
          text = JSON.stringify(input.input);
        } catch (e) {
          this.inFlight.delete(id);
          return failLater(done, token, FunctionFailure.fromSerialized(input.ref.name, notJson('input', e)));
        }
        run = [RUN, id, fid, text, input.attempt, input.invocationId, true];
      } else run = [RUN, id, fid, input.input, input.attempt, input.invocationId];
      // An idle thread gets its run at the end of this synchronous stretch (a microtask: the runs of a
      // convoy, started together, leave together). A busy one gets what this turn of the event loop gathers
      // in one message: waking a thread is what costs (most of the main thread's time under load), not the
      // copy.
      if (this.outgoing.push(run) === 1)
        if (this.inFlight.size === 1) queueMicrotask(this.flush);
        else setImmediate(this.flush);
    } else
      this.worker.postMessage({
        t: 'run',
        id,
        fid,
        input: input.input,
        batch: input.batch,
        attempt: input.attempt,
        invocationId: input.invocationId,
        files: input.files,
      } satisfies ToRunner);
  }

  /** flushRuns, bound once: it is queued on every run sent to an idle thread. */
  private readonly flush = (): void => this.flushRuns();

  private flushRuns(): void {
    const runs = this.outgoing;
    if (runs.length === 0) return;
    this.outgoing = [];
    if (this.isDead || !this.worker) return;
    this.worker.postMessage(runs.length === 1 ? runs[0] : ([RUN_MANY, runs] satisfies CompactRunMany));
  }

  /** The handle of a function on this thread, telling the thread about it the first time. */
  private handleOf(ref: FunctionRef): number {
    // Registered functions pass the same ref object every time: one WeakMap hit, no string building.
    let fid = this.handlesByRef.get(ref);
    if (fid !== undefined) return fid;
    const key = `${ref.module}\u0000${ref.name}`;
    fid = this.handles.get(key);
    if (fid === undefined) {
      fid = this.handles.size + 1;
      this.handles.set(key, fid);
      this.worker!.postMessage({ t: 'load', fid, ref } satisfies ToRunner);
    }
    this.handlesByRef.set(ref, fid);
    return fid;
  }

  private armTimer(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.sweep(), Math.max(0, at - performance.now()));
    this.timer.unref();
  }

  /** Kills the thread when a run passed its deadline; otherwise re-arms for the next deadline. */
  private sweep(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.isDead) return;
    const now = performance.now();
    let next = Infinity;
    for (const [id, f] of this.inFlight) {
      if (f.deadline <= now) return this.timeout(id);
      next = Math.min(next, f.deadline);
    }
    if (next < Infinity) this.armTimer(next);
  }

  cancel(invocationId: string): void {
    this.flushRuns();
    for (const [id, f] of this.inFlight)
      if (f.invocationId === invocationId) this.worker?.postMessage({ t: 'cancel', id } satisfies ToRunner);
  }

  onDeath(listener: (reason: string) => void): void {
    this.deathListeners.push(listener);
  }

  async close(): Promise<void> {
    if (this.isDead) return;
    this.cause = { failure: 'worker_crash', reason: 'runner closed' };
    await this.worker?.terminate();
    this.die(this.cause);
  }

  private onOk(id: number, output: unknown, handlerUs: number | undefined): void {
    const f = this.inFlight.get(id);
    if (!f) return;
    this.inFlight.delete(id);
    if (handlerUs !== undefined) f.options.onTimed?.(handlerUs);
    f.done(f.token, true, output);
  }

  private onMessage(m: FromRunner): void {
    if (m.t === 'ready') return;
    const f = this.inFlight.get(m.id);
    if (!f) return;
    if (m.t === 'beat') f.options.onHeartbeat?.();
    else if (m.t === 'log') f.options.onLog?.(m.level, m.msg, m.at);
    else {
      this.inFlight.delete(m.id);
      if (m.t === 'ok') f.done(f.token, true, m.output);
      else f.done(f.token, false, FunctionFailure.fromSerialized(f.fn, m.error));
    }
  }

  private timeout(id: number): void {
    const f = this.inFlight.get(id);
    if (!f || this.isDead) return;
    this.cause = { failure: 'timeout', culprit: id, reason: `timed out after ${f.options.timeoutMs} ms` };
    void this.worker?.terminate();
  }

  private die(cause: { failure: FailureClass; culprit?: number; reason: string }): void {
    if (this.isDead) return;
    this.isDead = true;
    if (this.timer) clearTimeout(this.timer);
    // Emptied first: a run's outcome reaches its caller at once, and the caller may send more (elsewhere).
    const lost = [...this.inFlight];
    this.inFlight.clear();
    for (const [id, f] of lost) {
      // Only the run that timed out is a timeout; the others on this thread were collateral.
      const failure = cause.failure === 'timeout' && id !== cause.culprit ? 'worker_crash' : cause.failure;
      const why = failure === cause.failure ? cause.reason : `its worker was terminated (${cause.reason})`;
      f.done(f.token, false, new FunctionFailure(failure, `${f.fn}: ${why}`, { function: f.fn }));
    }
    for (const l of this.deathListeners) l(cause.reason);
  }
}
