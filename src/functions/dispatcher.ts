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
  /** The convoy it leads or rides in. */
  convoy?: Convoy;
}

/** A leader and the riders started on its slots and its worker: the slots free when the last one settles. */
interface Convoy {
  leader: string;
  /** A runner of the pool every member's job names (riders are accepted only from the leader's pool). */
  runner: Runner;
  left: number;
}

/** Handlers quicker than this (on average, on the worker) may ride in a convoy. */
const QUICK_US = 1_000;
/** Most riders behind one leader: bounds how long a convoy holds its thread. */
const MAX_RIDERS = 31;
const NO_RIDERS: string[] = [];

/**
 * From a job to its answer on this node: the slot scheduler decides when it starts, its worker pool which
 * runner takes it. Nothing durable happens here (that is the runtime's part), which is what lets the
 * dispatch benchmark compare this path with a bare worker_threads round trip.
 */
export class Dispatcher {
  private readonly entries = new Map<string, Entry>();
  /** Per function: a moving average of its handler's time on a worker thread, in µs. */
  private readonly handlerUs = new Map<string, number>();
  private readonly timers = new Map<string, (us: number) => void>();

  constructor(
    readonly scheduler: SlotScheduler,
    /** Called whenever a slot frees, so fetchers can top up. */
    private readonly onFree: () => void = () => undefined,
  ) {}

  run(job: DispatchJob): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      const e: Entry = { job, resolve, reject };
      // A job is a scheduler item as it is: no copy per dispatch. On a node that keeps up nothing waits, so
      // the job starts without queueing (and without riders: there is nothing to take). Recorded only once
      // the scheduler took it: a job it refuses (a duplicate id, an unknown pool) must not replace or leave
      // an entry behind.
      if (this.scheduler.startNow(job)) {
        this.entries.set(job.id, e);
        return this.start(job.id, e, NO_RIDERS);
      }
      this.scheduler.submit(job);
      this.entries.set(job.id, e);
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

  /**
   * Starts what may start. A quick job that starts on a saturated node takes riders: the jobs that would
   * take the next free slots, if they are quick too and run on the same kind of worker. They go to its
   * thread in the same message and run there one after another, instead of each waiting for a slot and
   * costing a wake-up of a thread of its own, which on a busy node costs more than a quick handler.
   */
  private pump(): void {
    for (let item = this.scheduler.next(); item; item = this.scheduler.next()) {
      const e = this.entries.get(item.id)!;
      const riders: string[] = [];
      // ride() starts what it returns: ask only while there is room for one more.
      if (this.quick(e.job))
        while (riders.length < MAX_RIDERS) {
          const r = this.ride(item.id, e.job);
          if (!r) break;
          riders.push(r.id);
        }
      this.start(item.id, e, riders);
    }
  }

  private ride(leader: string, job: DispatchJob): { id: string } | undefined {
    return this.scheduler.ride(leader, (item) => {
      const rider = this.entries.get(item.id)?.job;
      return rider !== undefined && rider.workers === job.workers && this.quick(rider);
    });
  }

  private quick(job: DispatchJob): boolean {
    const us = job.fn === undefined ? undefined : this.handlerUs.get(job.fn);
    return us !== undefined && us < QUICK_US;
  }

  /** Feeds a function's handler times into its average (one closure per function, not per run). */
  private timerOf(fn: string): (us: number) => void {
    let t = this.timers.get(fn);
    if (!t) {
      t = (us) => {
        const avg = this.handlerUs.get(fn);
        this.handlerUs.set(fn, avg === undefined ? us : avg + (us - avg) / 8);
      };
      this.timers.set(fn, t);
    }
    return t;
  }

  // Plain callbacks rather than async functions, and no closures on the path of a ready runner: each promise
  // layer and allocation here is paid on every warm round trip, with caches that went cold while the thread
  // waited for the worker.
  private start(id: string, e: Entry, riders: string[]): void {
    let got: Runner | Promise<Runner>;
    try {
      got = e.job.workers.acquire();
    } catch (err) {
      return this.failStart(id, e, riders, err);
    }
    if (got instanceof Promise)
      got.then(
        (runner) => this.go(id, e, riders, runner),
        (err: unknown) => this.failStart(id, e, riders, err),
      );
    else this.go(id, e, riders, got);
  }

  private failStart(id: string, e: Entry, riders: string[], err: unknown): void {
    this.settle(id, e, undefined, false, err);
    for (const r of riders) this.settle(r, this.entries.get(r)!, undefined, false, err);
  }

  private go(id: string, e: Entry, riders: string[], runner: Runner): void {
    if (riders.length > 0) {
      const convoy: Convoy = { leader: id, runner, left: riders.length + 1 };
      e.convoy = convoy;
      for (const r of riders) this.entries.get(r)!.convoy = convoy;
    }
    this.launch(e, runner);
    for (const r of riders) this.launch(this.entries.get(r)!, runner);
  }

  private launch(e: Entry, runner: Runner): void {
    e.runner = runner;
    e.job.onStart?.(runner);
    const { timeoutMs, onLog, fn } = e.job;
    const options: RunOptions = { timeoutMs };
    if (onLog) options.onLog = onLog;
    if (fn !== undefined) options.onTimed = this.timerOf(fn);
    runner.send(e.job.input, options, this.done, e);
  }

  /** The outcome of a launched job (one function for every run: no closures per dispatch). */
  private readonly done = (e: Entry, ok: boolean, value: unknown): void =>
    this.settle(e.job.id, e, e.runner, ok, value);

  /**
   * Frees the slot before the caller hears back, so its next job finds the slot free. In a convoy, a rider
   * frees only its place under its function's limits; the leader's slots and worker free with the last.
   */
  private settle(id: string, e: Entry, runner: Runner | undefined, ok: boolean, value: unknown): void {
    this.entries.delete(id);
    const c = e.convoy;
    if (c === undefined) {
      this.scheduler.finish(id);
      if (runner) e.job.workers.released(runner);
    } else {
      if (id !== c.leader) this.scheduler.finish(id);
      if (--c.left === 0) {
        this.scheduler.finish(c.leader);
        e.job.workers.released(c.runner);
      }
    }
    this.onFree();
    this.pump();
    if (ok) e.resolve(value);
    else e.reject(value);
  }
}
