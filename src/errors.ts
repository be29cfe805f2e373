/**
 * Every error Cosmos raises on purpose is a CosmosError with a stable string code. Callers (and the HTTP
 * edge, which turns them into `{error: {code, message, details}}`) branch on `code`, never on messages.
 */

export const ERROR_CODES = {
  invalid_argument: 400,
  payload_too_large: 413,
  queue_enqueue_paused: 409,
  queue_not_exclusive: 409,
  not_found: 404,
  schema_too_new: 500,
  migration_failed: 500,
  migration_checksum_mismatch: 500,
  store_closed: 503,
  store_unavailable: 503,
  node_draining: 503,
  config_invalid: 400,
  function_not_found: 404,
  function_input_invalid: 400,
  function_output_invalid: 500,
  function_failed: 500,
  function_timeout: 504,
  function_out_of_memory: 500,
  worker_crashed: 500,
  platform_error: 500,
  blob_corrupt: 500,
  blob_not_found: 404,
  range_not_satisfiable: 416,
  workflow_not_found: 404,
  execution_not_found: 404,
  execution_finished: 409,
  workflow_signal_unknown: 400,
  service_invalid: 400,
  service_not_found: 404,
  operation_not_found: 404,
  validation_failed: 400,
  priority_out_of_range: 400,
  idempotency_conflict: 409,
  call_not_allowed: 403,
  execution_wait_timeout: 408,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class CosmosError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CosmosError';
    this.code = code;
    this.details = details;
  }

  /** The HTTP status the API edge answers with. */
  get status(): number {
    return ERROR_CODES[this.code];
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

export class InvalidArgumentError extends CosmosError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('invalid_argument', message, details);
    this.name = 'InvalidArgumentError';
  }
}

export class PayloadTooLargeError extends CosmosError {
  constructor(queue: string, bytes: number, limit: number) {
    super(
      'payload_too_large',
      `payload for queue "${queue}" is ${bytes} bytes, over the ${limit}-byte limit; store large data as a blob and enqueue its reference`,
      { queue, bytes, limit },
    );
    this.name = 'PayloadTooLargeError';
  }
}

export class QueuePausedError extends CosmosError {
  constructor(queues: string[]) {
    super('queue_enqueue_paused', `enqueue is paused on queue ${queues.map((q) => `"${q}"`).join(', ')}`, {
      queues,
    });
    this.name = 'QueuePausedError';
  }
}

export class QueueNotExclusiveError extends CosmosError {
  constructor(queue: string) {
    super(
      'queue_not_exclusive',
      `queue "${queue}" is not exclusive, so messages on it cannot carry an exclusivity key; configure it with { exclusive: true } first`,
      { queue },
    );
    this.name = 'QueueNotExclusiveError';
  }
}

export class NotFoundError extends CosmosError {
  constructor(what: string, id: string | number) {
    super('not_found', `${what} ${JSON.stringify(id)} not found`, { what, id });
    this.name = 'NotFoundError';
  }
}

export class SchemaTooNewError extends CosmosError {
  constructor(found: number, known: number) {
    super(
      'schema_too_new',
      `the database schema is at version ${found}, newer than this Cosmos knows (${known}); upgrade Cosmos instead of running an older one against it`,
      { found, known },
    );
    this.name = 'SchemaTooNewError';
  }
}

export class StoreClosedError extends CosmosError {
  constructor() {
    super('store_closed', 'the store is closed');
    this.name = 'StoreClosedError';
  }
}

export function isCosmosError(e: unknown): e is CosmosError {
  return e instanceof CosmosError;
}
