import { CosmosError, type ErrorCode } from '../errors.js';

/**
 * Why an invocation failed. The class decides whether another attempt can help: the same input will blow the
 * same heap again and fail the same validation again, while a crash, a timeout or a handler error may be
 * transient.
 */
export type FailureClass =
  'user' | 'timeout' | 'out_of_memory' | 'worker_crash' | 'platform' | 'input' | 'output';

const CODES: Record<FailureClass, ErrorCode> = {
  user: 'function_failed',
  timeout: 'function_timeout',
  out_of_memory: 'function_out_of_memory',
  worker_crash: 'worker_crashed',
  platform: 'platform_error',
  input: 'function_input_invalid',
  output: 'function_output_invalid',
};

const RETRYABLE: Record<FailureClass, boolean> = {
  user: true,
  timeout: true,
  out_of_memory: false,
  worker_crash: true,
  platform: true,
  input: false,
  output: false,
};

/** An error as it crosses a thread or process boundary. */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  /** e.g. ERR_ACCESS_DENIED from the permission model. */
  code?: string;
  /** Set by the handler (NonRetryableError) to stop retries of a user error. */
  retryable?: boolean;
  /** Set by the runner when it classified the failure itself (input/output validation). */
  failure?: FailureClass;
  issues?: unknown;
}

/** A batch's inputs and answers cross the thread boundary as JSON text (see CompactRun). */
export function notJson(what: 'input' | 'output', error: unknown): SerializedError {
  return {
    name: what === 'input' ? 'InputInvalid' : 'OutputInvalid',
    message: `the batch's ${what} is not a JSON value: ${error instanceof Error ? error.message : String(error)}`,
    failure: what,
  };
}

/** Thrown by a handler to fail without further attempts (the input can never succeed). */
export class NonRetryableError extends Error {
  readonly retryable = false;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'NonRetryableError';
  }
}

export class FunctionFailure extends CosmosError {
  readonly failure: FailureClass;
  readonly retryable: boolean;

  constructor(
    failure: FailureClass,
    message: string,
    details: Record<string, unknown> = {},
    retryable?: boolean,
  ) {
    super(CODES[failure], message, { failure, ...details });
    this.name = 'FunctionFailure';
    this.failure = failure;
    this.retryable = retryable ?? RETRYABLE[failure];
  }

  /** A failure reported by a runner (the handler threw, or the runner classified it). */
  static fromSerialized(fn: string, e: SerializedError): FunctionFailure {
    const failure = e.failure ?? 'user';
    const details: Record<string, unknown> = { function: fn, errorName: e.name };
    if (e.code !== undefined) details.errorCode = e.code;
    if (e.issues !== undefined) details.issues = e.issues;
    const f = new FunctionFailure(
      failure,
      `${e.name}: ${e.message}`,
      details,
      e.retryable === false ? false : undefined,
    );
    if (e.stack !== undefined) f.stack = e.stack;
    return f;
  }
}

export function serializeError(e: unknown): SerializedError {
  if (e instanceof Error) {
    const out: SerializedError = { name: e.name, message: e.message };
    if (e.stack !== undefined) out.stack = e.stack;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') out.code = code;
    if ((e as { retryable?: unknown }).retryable === false) out.retryable = false;
    return out;
  }
  return { name: 'Error', message: typeof e === 'string' ? e : (JSON.stringify(e) ?? String(e)) };
}

export function isRetryableFailure(e: unknown): boolean {
  return e instanceof FunctionFailure ? e.retryable : true;
}

/** Any error from the platform's side of a run, as a FunctionFailure (class `platform` unless it is one). */
export function asFailure(e: unknown, fn: string): FunctionFailure {
  return e instanceof FunctionFailure ? e : new FunctionFailure('platform', String(e), { function: fn });
}
