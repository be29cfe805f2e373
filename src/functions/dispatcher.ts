import { CosmosError } from '../errors.js';
import type { RunInput, RunOptions, Runner } from './runtimes/runner.js';
import type { SlotScheduler } from './scheduler/slot-scheduler.js';
import type { WorkerPool } from './worker-pool.js';

/** One handler call to place: where it may run, how it ranks, and what to send. */
export interface DispatchJob {
  id: string;
  pool: string;
  priority: number;
  fn?: string;
  key?: string;
  slots: number;
  opportunistic: boolean;
  workers: WorkerPool;
  input: RunInput;
  timeoutMs: number;
  /** Called when a runner takes the job (the end of its wait for a slot and a worker). */
  onStart?: (runner: Runner) => void;
  /** A line the handler printed or logged through its context. */
  onLog?: RunOptions['onLog'];
}

interface Entry {
  job: DispatchJob;
  resolve: (output: unknown) => void;
  reject: (e: unknown) => void;
  /** Set once started, so a running job can be told to stop. */
  runner?: Runner;
}

/**
 * From a job to its answer on this node: the slot scheduler decides when it starts, its worker pool which
 * runner takes it. Nothing durable happens here (that is the runtime's part), which is what lets the
 * dispatch benchmark compare this path with a bare worker_threads round trip.
 */
export class Dispatcher {
  private readonly entries = new Map<string, Entry>();

  constructor(
    readonly scheduler: SlotScheduler,
    /** Called whenever a slot frees, so fetchers can top up. */
    private readonly onFree: () => void = () => undefined,
  ) {}

  run(job: DispatchJob): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      this.entries.set(job.id, { job, resolve, reject });
      // A job is a scheduler item as it is: no copy per dispatch.
      this.scheduler.submit(job);
      this.pump();
    });
  }

  /** Withdraws a job that has not started; its promise rejects. */
  cancel(id: string): boolean {
    const e = this.entries.get(id);
    if (!e || !this.scheduler.cancel(id)) return false;
    this.entries.delete(id);
    e.reject(new CosmosError('platform_error', `job ${id} was withdrawn before it started`));
    return true;
  }

  /** Withdraws a job that has not started, or asks a running one to stop (its handler's signal aborts). */
  abort(id: string): void {
    if (this.cancel(id)) return;
    const e = this.entries.get(id);
    e?.runner?.cancel(e.job.input.invocationId);
  }

  private pump(): void {
    for (let item = this.scheduler.next(); item; item = this.scheduler.next()) this.start(item.id);
  }

  // Plain callbacks rather than async functions: each promise layer on this path costs a measurable share of
  // a warm round trip (about 40 µs in all).
  private start(id: string): void {
    const e = this.entries.get(id)!;
    let got: Runner | Promise<Runner>;
    try {
      got = e.job.workers.acquire();
    } catch (err) {
      return this.settle(id, e, undefined, false, err);
    }
    if (got instanceof Promise)
      got.then(
        (r) => this.launch(id, e, r),
        (err: unknown) => this.settle(id, e, undefined, false, err),
      );
    else this.launch(id, e, got);
  }

  private launch(id: string, e: Entry, runner: Runner): void {
    e.runner = runner;
    e.job.onStart?.(runner);
    const { timeoutMs, onLog } = e.job;
    runner.run(e.job.input, onLog ? { timeoutMs, onLog } : { timeoutMs }).then(
      (output) => this.settle(id, e, runner, true, output),
      (err: unknown) => this.settle(id, e, runner, false, err),
    );
  }

  /** Frees the slot before the caller hears back, so its next job finds the slot free. */
  private settle(id: string, e: Entry, runner: Runner | undefined, ok: boolean, value: unknown): void {
    this.entries.delete(id);
    this.scheduler.finish(id);
    if (runner) e.job.workers.released(runner);
    this.onFree();
    this.pump();
    if (ok) e.resolve(value);
    else e.reject(value);
  }
}
