import { Worker } from 'node:worker_threads';
import { runnerEntry } from '../bundler.js';
import { FunctionFailure, type FailureClass } from '../failure.js';
import type { FromRunner, ToRunner } from '../protocol.js';
import type { RunInput, RunOptions, Runner } from './runner.js';

interface InFlight {
  fn: string;
  invocationId: string;
  options: RunOptions;
  resolve: (output: unknown) => void;
  reject: (e: FunctionFailure) => void;
  timer: NodeJS.Timeout;
}

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
  private isDead = false;
  /** Set before terminating, so the exit is attributed to the right cause. */
  private cause: { failure: FailureClass; culprit?: number; reason: string } | undefined;

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
          w.on('message', (m: FromRunner) => {
            if (m.t === 'ready') resolve();
            else this.onMessage(m);
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
    if (this.isDead || !this.worker)
      return Promise.reject(
        new FunctionFailure('worker_crash', 'the worker is not running', { function: input.ref.name }),
      );
    const id = this.nextId++;
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => this.timeout(id), options.timeoutMs);
      this.inFlight.set(id, {
        fn: input.ref.name,
        invocationId: input.invocationId,
        options,
        resolve,
        reject,
        timer,
      });
      this.worker!.postMessage({ t: 'run', id, ...input } satisfies ToRunner);
    });
  }

  cancel(invocationId: string): void {
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

  private onMessage(m: FromRunner): void {
    if (m.t === 'ready') return;
    const f = this.inFlight.get(m.id);
    if (!f) return;
    if (m.t === 'beat') f.options.onHeartbeat?.();
    else if (m.t === 'log') f.options.onLog?.(m.level, m.msg, m.at);
    else {
      this.inFlight.delete(m.id);
      clearTimeout(f.timer);
      if (m.t === 'ok') f.resolve(m.output);
      else f.reject(FunctionFailure.fromSerialized(f.fn, m.error));
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
    for (const [id, f] of this.inFlight) {
      clearTimeout(f.timer);
      // Only the run that timed out is a timeout; the others on this thread were collateral.
      const failure = cause.failure === 'timeout' && id !== cause.culprit ? 'worker_crash' : cause.failure;
      const why = failure === cause.failure ? cause.reason : `its worker was terminated (${cause.reason})`;
      f.reject(new FunctionFailure(failure, `${f.fn}: ${why}`, { function: f.fn }));
    }
    this.inFlight.clear();
    for (const l of this.deathListeners) l(cause.reason);
  }
}
