import type { FunctionFailure } from '../failure.js';
import type { FunctionRef, LogLevel, RunRequest } from '../protocol.js';

/** What a caller supplies per invocation; the runner adds the message id. */
export type RunInput = Omit<RunRequest, 't' | 'id' | 'ref' | 'fid'> & { ref: FunctionRef };

export interface RunOptions {
  /** Wall-clock limit: past it the runner is killed and the run fails with class `timeout`. */
  timeoutMs: number;
  onHeartbeat?: () => void;
  onLog?: (level: LogLevel, message: string, at: number) => void;
  /** How long the handler ran on the worker, in µs, when the runner can tell (worker threads). */
  onTimed?: (handlerUs: number) => void;
}

/**
 * One worker: a thread or a sandboxed process that runs invocations of any function whose bundle it is given.
 * A runner that was killed (timeout), ran out of memory or crashed is `dead` for good; its pool replaces it.
 * Every in-flight run of a dead runner rejects with a FunctionFailure: the one that timed out with `timeout`,
 * the others with `worker_crash` (they were collateral), all of them with `out_of_memory` when the heap blew.
 */
export interface Runner {
  readonly kind: 'thread' | 'sandbox' | 'command';
  /** Which worker this is, as traces show it: `thread <id>`, `sandbox pid <pid>`. */
  readonly name: string;
  /** Resolves once the runner can take work; rejects if it could not start. */
  readonly ready: Promise<void>;
  readonly dead: boolean;
  /** Runs in flight. */
  readonly load: number;
  /** Resolves with the validated output (a BatchAnswer for a batch); rejects with a FunctionFailure. */
  run(input: RunInput, options: RunOptions): Promise<unknown>;
  /**
   * run() without a promise: `done(token, ...)` is called once with the outcome. The dispatcher's path, where
   * a promise and its two closures per run were a measurable share of a warm round trip.
   */
  send<T>(input: RunInput, options: RunOptions, done: RunDone<T>, token: T): void;
  /** Asks the handler of that invocation to stop (its ctx.signal aborts); the run still settles. */
  cancel(invocationId: string): void;
  /** Called once when the runner dies, whatever the reason. */
  onDeath(listener: (reason: string) => void): void;
  /** Stops the runner: in-flight runs fail with `worker_crash`. */
  close(): Promise<void>;
}

/** Called once with a run's outcome: `ok` and the output, or not `ok` and the FunctionFailure. */
export type RunDone<T> = (token: T, ok: boolean, value: unknown) => void;

/** send() for a runner whose native call is run(). */
export function sendThroughRun<T>(
  runner: Runner,
  input: RunInput,
  options: RunOptions,
  done: RunDone<T>,
  token: T,
): void {
  runner.run(input, options).then(
    (output) => done(token, true, output),
    (e: unknown) => done(token, false, e),
  );
}

/** A run a runner has sent and not yet heard back about. */
export interface PendingRun {
  fn: string;
  invocationId: string;
  options: RunOptions;
  resolve: (output: unknown) => void;
  reject: (e: FunctionFailure) => void;
}
