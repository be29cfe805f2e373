import type { z } from 'zod';
import { InvalidArgumentError } from '../errors.js';
import type { LogLevel } from './protocol.js';

/** What a handler gets besides its input. */
export interface FunctionContext {
  /** Stable across attempts: use it to make side effects idempotent. */
  invocationId: string;
  /** 1 on the first attempt. */
  attempt: number;
  /** Aborted when the invocation is canceled or timed out; long handlers should check it. */
  signal: AbortSignal;
  /** Extends the lease; sent automatically every `heartbeatMs` while the handler runs. */
  heartbeat(): void;
  log(level: LogLevel, message: string): void;
  /** Local paths of declared file inputs, and a directory whose files become output blobs. */
  files: { inputs: Record<string, string>; outDir: string };
}

export type Handler<I, O> = (input: I, ctx: FunctionContext) => O | Promise<O>;
/** A batch handler answers each input in order; an Error in the answer fails only that input. */
export type BatchHandler<I, O> = (
  inputs: I[],
  ctx: FunctionContext,
) => (O | Error)[] | Promise<(O | Error)[]>;

export interface Backoff {
  /** Delay before the second attempt. */
  initialMs: number;
  maxMs: number;
  factor: number;
  /** Full jitter: the delay is uniform in [0, computed], so retries of a burst spread out. */
  jitter: boolean;
}

export interface FunctionOptions<I extends z.ZodType, O extends z.ZodType> {
  input: I;
  output: O;
  /** Scheduling pool (default "default"). */
  pool?: string;
  /** cpu: slots taken while running; memoryMb: heap limit of the worker that runs it. */
  shape?: { cpu?: number; memoryMb?: number };
  timeoutMs?: number;
  /** Total attempts, the first included. */
  attempts?: number;
  backoff?: Partial<Backoff>;
  heartbeatMs?: number;
  concurrency?: { max?: number; perKey?: number };
  /** The handler takes arrays: up to `max` invocations gathered for at most `waitMs`. */
  batch?: { max: number; waitMs: number };
  /** thread (default): a worker thread; sandbox: a child process under Node's permission model. */
  runtime?: 'thread' | 'sandbox';
  /** Sandbox only: environment variables passed through, and extra paths it may read. */
  sandbox?: { env?: string[]; allowRead?: string[] };
  /** Runs only on idle capacity and yields to all other work. */
  opportunistic?: boolean;
  /**
   * File I/O: `inputs` names input properties that hold blob references; the handler reads them as local
   * files (`ctx.files.inputs[name]`), and what it writes under `ctx.files.outDir` is stored as blobs.
   */
  files?: { inputs?: string[] };
  /** Released independently of its service; default: derived from the bundle's content. */
  version?: string;
}

export interface ResolvedFunctionOptions {
  pool: string;
  shape: { cpu: number; memoryMb: number };
  timeoutMs: number;
  attempts: number;
  backoff: Backoff;
  heartbeatMs: number;
  concurrency: { max?: number; perKey?: number };
  batch?: { max: number; waitMs: number };
  /** `command`: an executable run by the node (see commandFn); set by the runtime, not by fn(). */
  runtime: 'thread' | 'sandbox' | 'command';
  sandbox: { env: string[]; allowRead: string[] };
  opportunistic: boolean;
  files?: { inputs: string[] };
  version?: string;
}

export const FUNCTION_DEFAULTS = {
  pool: 'default',
  shape: { cpu: 1, memoryMb: 512 },
  timeoutMs: 60_000,
  attempts: 3,
  backoff: { initialMs: 1_000, maxMs: 60_000, factor: 2, jitter: true },
  heartbeatMs: 10_000,
} as const;

/**
 * Method-style parameters are checked bivariantly, which lets a definition with a specific input type be
 * held where `FunctionDefinition` (unknown input) is expected, as registries and runtimes do.
 */
type Bivariant<F extends (...args: never[]) => unknown> = {
  call(...args: Parameters<F>): ReturnType<F>;
}['call'];

export interface FunctionDefinition<I = unknown, O = unknown> {
  readonly kind: 'cosmos.function';
  readonly input: z.ZodType<I>;
  readonly output: z.ZodType<O>;
  readonly options: ResolvedFunctionOptions;
  readonly handler: Bivariant<Handler<I, O>> | Bivariant<BatchHandler<I, O>>;
}

const positive = (name: string, v: number | undefined, min = 1): void => {
  if (v !== undefined && !(Number.isFinite(v) && v >= min))
    throw new InvalidArgumentError(`fn(): ${name} must be a number >= ${min}, got ${String(v)}`, {
      option: name,
    });
};

/** Defines a function. With `batch`, the handler must take and return arrays. */
export function fn<I extends z.ZodType, O extends z.ZodType>(
  options: FunctionOptions<I, O> & { batch: { max: number; waitMs: number } },
  handler: BatchHandler<z.output<I>, z.input<O>>,
): FunctionDefinition<z.output<I>, z.output<O>>;
export function fn<I extends z.ZodType, O extends z.ZodType>(
  options: FunctionOptions<I, O>,
  handler: Handler<z.output<I>, z.input<O>>,
): FunctionDefinition<z.output<I>, z.output<O>>;
export function fn<I extends z.ZodType, O extends z.ZodType>(
  options: FunctionOptions<I, O>,
  handler: Handler<z.output<I>, z.input<O>> | BatchHandler<z.output<I>, z.input<O>>,
): FunctionDefinition<z.output<I>, z.output<O>> {
  if (typeof handler !== 'function') throw new InvalidArgumentError('fn(): the handler must be a function');
  if (!options.input || !options.output)
    throw new InvalidArgumentError('fn(): input and output schemas (zod) are required');
  positive('timeoutMs', options.timeoutMs);
  positive('attempts', options.attempts);
  positive('heartbeatMs', options.heartbeatMs);
  positive('shape.cpu', options.shape?.cpu);
  positive('shape.memoryMb', options.shape?.memoryMb, 16);
  positive('concurrency.max', options.concurrency?.max);
  positive('concurrency.perKey', options.concurrency?.perKey);
  positive('backoff.initialMs', options.backoff?.initialMs, 0);
  positive('backoff.factor', options.backoff?.factor);
  for (const name of options.sandbox?.env ?? [])
    if (name.startsWith('NODE_') && name !== 'NODE_ENV')
      throw new InvalidArgumentError(
        `fn(): sandbox.env may not pass ${name}: NODE_OPTIONS and its kin could grant what the sandbox withholds`,
        { option: 'sandbox.env' },
      );
  if (options.files && options.batch)
    throw new InvalidArgumentError('fn(): a function with file I/O cannot take micro-batches', {
      option: 'files',
    });
  if (options.files && options.runtime === 'sandbox')
    throw new InvalidArgumentError(
      'fn(): file I/O is not available to sandboxed functions yet (their sandbox may read only their bundle)',
      { option: 'files' },
    );
  if (options.batch) {
    positive('batch.max', options.batch.max);
    positive('batch.waitMs', options.batch.waitMs, 0);
  }
  const resolved: ResolvedFunctionOptions = {
    pool: options.pool ?? FUNCTION_DEFAULTS.pool,
    shape: { ...FUNCTION_DEFAULTS.shape, ...options.shape },
    timeoutMs: options.timeoutMs ?? FUNCTION_DEFAULTS.timeoutMs,
    attempts: options.attempts ?? FUNCTION_DEFAULTS.attempts,
    backoff: { ...FUNCTION_DEFAULTS.backoff, ...options.backoff },
    heartbeatMs: options.heartbeatMs ?? FUNCTION_DEFAULTS.heartbeatMs,
    concurrency: { ...options.concurrency },
    runtime: options.runtime ?? 'thread',
    sandbox: { env: options.sandbox?.env ?? [], allowRead: options.sandbox?.allowRead ?? [] },
    opportunistic: options.opportunistic ?? false,
    ...(options.batch && { batch: { ...options.batch } }),
    ...(options.files && { files: { inputs: [...(options.files.inputs ?? [])] } }),
    ...(options.version !== undefined && { version: options.version }),
  };
  return {
    kind: 'cosmos.function',
    input: options.input as z.ZodType<z.output<I>>,
    output: options.output as z.ZodType<z.output<O>>,
    options: resolved,
    handler: handler as Handler<z.output<I>, z.output<O>>,
  };
}

export function isFunctionDefinition(v: unknown): v is FunctionDefinition {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'cosmos.function';
}

/**
 * Finds a function in a loaded module: a named export, or a service (default export or `functions` record).
 * Bundles load in their own module instance, so recognition is by shape, not identity.
 */
export function findFunction(mod: Record<string, unknown>, name: string): FunctionDefinition | undefined {
  const candidates: unknown[] = [mod[name]];
  const def = mod.default as Record<string, unknown> | undefined;
  if (def && typeof def === 'object') {
    candidates.push(def[name], (def.functions as Record<string, unknown> | undefined)?.[name]);
  }
  candidates.push((mod.functions as Record<string, unknown> | undefined)?.[name]);
  return candidates.find(isFunctionDefinition);
}
