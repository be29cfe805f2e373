import { fork, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { InvalidArgumentError } from '../../errors.js';
import { runnerEntry } from '../bundler.js';
import { FunctionFailure, type FailureClass, type SerializedError } from '../failure.js';
import type { FromRunner, LogLevel, ToRunner } from '../protocol.js';
import {
  sendThroughRun,
  type PendingRun,
  type RunDone,
  type RunInput,
  type RunOptions,
  type Runner,
} from './runner.js';

export interface SandboxOptions {
  /** The function bundle: with the runner entry, the only file the child may read. */
  bundle: string;
  /** Heap limit of the child (V8 old space). */
  memoryMb: number;
  /** The child's whole environment, already filtered to the function's allow-list by the caller. */
  env: Record<string, string>;
  /** Extra paths the child may read (files, or directories with everything under them). */
  allowRead?: string[];
  /**
   * The child's stdout and stderr. The code is untrusted, so its output is never copied onto the platform's
   * own streams (it could forge platform log lines); stderr is kept anyway, bounded, to classify a death.
   */
  onOutput?: (stream: 'stdout' | 'stderr', text: string) => void;
}

/** Enough stderr to hold V8's fatal-error banner after any amount of handler noise. */
const STDERR_KEEP = 64 * 1024;
/** What a failure's details carry: the last lines, not the whole buffer. */
const STDERR_TAIL = 2 * 1024;
/** How long close() waits for an orderly exit before it kills. */
const CLOSE_GRACE_MS = 1_000;
/** After `exit`, how long to wait for the stdio pipes to drain (`close`) before classifying anyway. */
const DRAIN_MS = 250;

// V8's fatal heap error ("Reached heap limit Allocation failed - JavaScript heap out of memory").
const OUT_OF_MEMORY = /heap out of memory|Allocation failed|Reached heap limit/;
const LOG_LEVELS: ReadonlySet<string> = new Set<LogLevel>(['debug', 'info', 'warn', 'error']);

/**
 * The permission model's switch: Node 20 only knows `--experimental-permission`; from Node 22.13/23.5 it is
 * `--permission` (the old name is gone in newer releases). Detected by feature, not by version number.
 */
export function permissionFlag(): '--permission' | '--experimental-permission' {
  return process.allowedNodeEnvironmentFlags.has('--permission')
    ? '--permission'
    : '--experimental-permission';
}

/**
 * The child's Node flags. Everything not granted is denied: no fs writes, no child processes, no workers, no
 * addons, no WASI (and, where Node has them, no inspector or OpenSSL store loaders). Reads are limited to the
 * runner entry and the bundle (one file each, which is why both are bundled). Network is NOT restricted: the
 * permission model of Node 20–24 has no network scope.
 */
export function sandboxExecArgv(
  entry: string,
  options: Pick<SandboxOptions, 'bundle' | 'memoryMb' | 'allowRead'>,
): string[] {
  const reads = [entry, options.bundle, ...(options.allowRead ?? [])].map((p) => resolve(p));
  return [
    permissionFlag(),
    ...reads.map((p) => `--allow-fs-read=${p}`),
    '--disallow-code-generation-from-strings',
    `--max-old-space-size=${Math.floor(options.memoryMb)}`,
    // Node 20 announces the experimental permission model on every start; that line is not the handler's.
    ...(process.allowedNodeEnvironmentFlags.has('--disable-warning')
      ? ['--disable-warning=ExperimentalWarning']
      : []),
  ];
}

/**
 * Names Node itself reads from the environment can change the sandbox from outside its flags
 * (NODE_OPTIONS may grant `--allow-child-process`; NODE_V8_COVERAGE makes Node write files). NODE_ENV is
 * plain configuration and stays allowed.
 */
function checkEnv(env: Record<string, string>): void {
  for (const name of Object.keys(env))
    if (name.startsWith('NODE_') && name !== 'NODE_ENV')
      throw new InvalidArgumentError(`the sandbox environment cannot pass ${name}: Node itself reads it`, {
        variable: name,
      });
}

interface InFlight extends PendingRun {
  timer: NodeJS.Timeout;
}

interface Cause {
  failure: FailureClass;
  reason: string;
  /** The run that caused the death (a timeout); the others in flight were collateral. */
  culprit?: number;
  details?: Record<string, unknown>;
}

/**
 * A child process under Node's permission model (SPEC §6): for code that is not trusted with the node's files,
 * processes or secrets. Slower to start than a thread (a whole Node), so pools keep them warm. A timeout is a
 * SIGKILL from here: the child gets no chance to run anything once its time is up.
 */
export class SandboxRunner implements Runner {
  readonly kind = 'sandbox';
  readonly ready: Promise<void>;
  private child: ChildProcess | undefined;
  private readonly bundle: string;
  private readonly readable: ReadonlySet<string>;
  private readonly inFlight = new Map<number, InFlight>();
  private readonly deathListeners: ((reason: string) => void)[] = [];
  private nextId = 1;
  private isDead = false;
  private deathReason = '';
  private stderr = '';
  private started = false;
  private readonly queue: ToRunner[] = [];
  /** Set before killing, so the exit is attributed to what caused it rather than read as a crash. */
  private cause: Cause | undefined;
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly gone: Promise<void>;
  private markGone!: () => void;

  private constructor(private readonly options: SandboxOptions) {
    checkEnv(options.env);
    this.bundle = resolve(options.bundle);
    this.readable = new Set([this.bundle, ...(options.allowRead ?? []).map((p) => resolve(p))]);
    this.gone = new Promise((done) => (this.markGone = done));
    this.ready = runnerEntry('sandbox-entry').then(
      (entry) => this.spawn(entry),
      (e: unknown) => {
        const failure = new FunctionFailure(
          'platform',
          `the sandbox runner entry could not be built: ${String(e)}`,
        );
        this.die({ failure: 'platform', reason: failure.message });
        throw failure;
      },
    );
    this.ready.catch(() => undefined);
  }

  static start(options: SandboxOptions): SandboxRunner {
    return new SandboxRunner(options);
  }

  get dead(): boolean {
    return this.isDead;
  }

  get load(): number {
    return this.inFlight.size;
  }

  /** The child's process id once forked (for operators and tests). */
  get name(): string {
    return this.child?.pid !== undefined ? `sandbox pid ${this.child.pid}` : 'sandbox';
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  send<T>(input: RunInput, options: RunOptions, done: RunDone<T>, token: T): void {
    sendThroughRun(this, input, options, done, token);
  }

  run(input: RunInput, options: RunOptions): Promise<unknown> {
    const fn = input.ref.name;
    if (this.isDead)
      return Promise.reject(
        new FunctionFailure('worker_crash', `${fn}: ${this.deathReason}`, { function: fn }),
      );
    // The child could not read another module anyway; saying so here is clearer than its ERR_ACCESS_DENIED.
    if (!this.readable.has(resolve(input.ref.module)))
      return Promise.reject(
        new FunctionFailure('platform', `${fn}: this sandbox runs ${this.bundle}, not ${input.ref.module}`, {
          function: fn,
          module: input.ref.module,
        }),
      );
    const id = this.nextId++;
    return new Promise<unknown>((resolve, reject) => {
      // The clock starts at the call, as the caller sees it; a start-up that eats the budget is a timeout too.
      const timer = setTimeout(() => this.timeout(id), options.timeoutMs);
      this.inFlight.set(id, { fn, invocationId: input.invocationId, options, resolve, reject, timer });
      this.post({ t: 'run', id, ...input });
    });
  }

  cancel(invocationId: string): void {
    for (const [id, f] of this.inFlight) if (f.invocationId === invocationId) this.post({ t: 'cancel', id });
  }

  onDeath(listener: (reason: string) => void): void {
    if (this.isDead) queueMicrotask(() => listener(this.deathReason));
    else this.deathListeners.push(listener);
  }

  async close(): Promise<void> {
    if (this.isDead) return;
    this.cause ??= { failure: 'worker_crash', reason: 'runner closed' };
    const child = this.child;
    if (!child || this.exited) return this.die(this.cause);
    // Fail the runs now: closing is not their fault, and they should not wait for the grace period.
    this.failInFlight(this.cause);
    // The entry exits by itself when the channel goes; a handler stuck in a loop does not, hence the kill.
    if (child.connected) child.disconnect();
    const kill = setTimeout(() => child.kill('SIGKILL'), CLOSE_GRACE_MS);
    await this.gone;
    clearTimeout(kill);
  }

  private spawn(entry: string): Promise<void> {
    return new Promise<void>((ready, failed) => {
      if (this.isDead) return failed(new FunctionFailure('platform', 'runner closed before it started'));
      const child = fork(entry, [], {
        execPath: process.execPath,
        execArgv: sandboxExecArgv(entry, this.options),
        // Not inherited: the child sees only what the function was allowed.
        env: { ...this.options.env },
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        serialization: 'advanced',
      });
      this.child = child;
      child.stdout?.setEncoding('utf8').on('data', (s: string) => this.options.onOutput?.('stdout', s));
      child.stderr?.setEncoding('utf8').on('data', (s: string) => {
        this.stderr = (this.stderr + s).slice(-STDERR_KEEP);
        this.options.onOutput?.('stderr', s);
      });
      child.on('message', (m: unknown) => {
        if (isMessage(m) && m.t === 'ready') {
          if (this.started) return;
          this.started = true;
          for (const queued of this.queue.splice(0)) this.toChild(queued);
          ready();
        } else this.onMessage(m);
      });
      child.on('error', (e: Error) => {
        // A failed spawn (no `exit` follows) or a failed send on a closing channel (an `exit` will follow).
        if (child.pid === undefined) {
          const failure = new FunctionFailure('platform', `the sandbox could not start: ${e.message}`);
          failed(failure);
          this.die({ failure: 'platform', reason: failure.message });
        }
      });
      child.on('exit', (code, signal) => {
        this.exited = { code, signal };
        // `close` follows once stdout/stderr have drained, so the classification sees V8's last words.
        setTimeout(() => this.finish(failed), DRAIN_MS).unref();
      });
      child.on('close', () => this.finish(failed));
    });
  }

  private finish(failed: (e: FunctionFailure) => void): void {
    if (this.isDead) return;
    const { code, signal } = this.exited ?? { code: null, signal: null };
    const cause = this.cause ?? this.classify(code, signal);
    failed(
      new FunctionFailure(
        'platform',
        `the sandbox exited before it was ready: ${cause.reason}`,
        cause.details,
      ),
    );
    this.die(cause);
  }

  private classify(code: number | null, signal: NodeJS.Signals | null): Cause {
    const how = signal ? `signal ${signal}` : `code ${code}`;
    const details = { exitCode: code, signal, stderrTail: this.stderr.slice(-STDERR_TAIL) };
    if (OUT_OF_MEMORY.test(this.stderr) && (signal !== null || code !== 0))
      return {
        failure: 'out_of_memory',
        reason: `out of memory (heap limit ${this.options.memoryMb} MB; exited by ${how})`,
        details,
      };
    return { failure: 'worker_crash', reason: `the sandbox process exited unexpectedly (${how})`, details };
  }

  /** Sends now, or once the child is up: in call order either way, so a cancel never overtakes its run. */
  private post(m: ToRunner): void {
    if (this.started) this.toChild(m);
    else this.queue.push(m);
  }

  private toChild(m: ToRunner): void {
    const child = this.child;
    if (!child?.connected) return;
    // A send racing the child's death fails here; the exit that follows settles the runs.
    child.send(m, (e) => void e);
  }

  private onMessage(raw: unknown): void {
    // The child runs untrusted code that can call process.send itself: nothing it says is taken on trust.
    if (!isMessage(raw) || raw.t === 'ready') return;
    const f = this.inFlight.get(raw.id);
    if (!f) return;
    if (raw.t === 'beat') f.options.onHeartbeat?.();
    else if (raw.t === 'log') {
      if (LOG_LEVELS.has(raw.level))
        f.options.onLog?.(raw.level, String(raw.msg), Number(raw.at) || Date.now());
    } else {
      this.inFlight.delete(raw.id);
      clearTimeout(f.timer);
      if (raw.t === 'ok') f.resolve(raw.output);
      else f.reject(FunctionFailure.fromSerialized(f.fn, untrusted(raw.error)));
    }
  }

  private timeout(id: number): void {
    const f = this.inFlight.get(id);
    // Already exiting on its own: that exit, not this timer, says what happened.
    if (!f || this.isDead || this.cause || this.exited) return;
    this.cause = {
      failure: 'timeout',
      culprit: id,
      reason: `timed out after ${f.options.timeoutMs} ms`,
      details: { timeoutMs: f.options.timeoutMs },
    };
    // Settled on exit, not here: when the run rejects, the process is already gone.
    if (this.child?.pid !== undefined) this.child.kill('SIGKILL');
    else this.die(this.cause);
  }

  private failInFlight(cause: Cause): void {
    for (const [id, f] of this.inFlight) {
      clearTimeout(f.timer);
      // Only the run that timed out is a timeout; the others in this process were collateral.
      const failure = cause.failure === 'timeout' && id !== cause.culprit ? 'worker_crash' : cause.failure;
      const why = failure === cause.failure ? cause.reason : `its sandbox was killed (${cause.reason})`;
      f.reject(
        new FunctionFailure(failure, `${f.fn}: ${why}`, {
          function: f.fn,
          pid: this.child?.pid,
          ...cause.details,
        }),
      );
    }
    this.inFlight.clear();
  }

  private die(cause: Cause): void {
    if (this.isDead) return;
    this.isDead = true;
    this.deathReason = cause.reason;
    this.failInFlight(cause);
    this.markGone();
    for (const l of this.deathListeners.splice(0)) l(cause.reason);
  }
}

function isMessage(m: unknown): m is FromRunner {
  if (typeof m !== 'object' || m === null) return false;
  const { t, id } = m as { t?: unknown; id?: unknown };
  if (t === 'ready') return true;
  return (t === 'ok' || t === 'err' || t === 'beat' || t === 'log') && typeof id === 'number';
}

/**
 * An error as the child reported it, reduced to well-typed fields. The child may classify its own failure only
 * as the runner core does (input/output validation) and may only waive retries, never claim a platform fault.
 */
function untrusted(e: unknown): SerializedError {
  const o = (typeof e === 'object' && e !== null ? e : {}) as Record<string, unknown>;
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const out: SerializedError = { name: str(o.name) ?? 'Error', message: str(o.message) ?? String(e) };
  const stack = str(o.stack);
  const code = str(o.code);
  if (stack !== undefined) out.stack = stack;
  if (code !== undefined) out.code = code;
  if (o.retryable === false) out.retryable = false;
  if (o.failure === 'input' || o.failure === 'output') out.failure = o.failure;
  if (o.issues !== undefined) out.issues = o.issues;
  return out;
}
