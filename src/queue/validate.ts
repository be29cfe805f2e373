import { InvalidArgumentError, PayloadTooLargeError } from '../errors.js';
import type { NewMessage } from '../store/store.js';
import type { DequeueRequest, EnqueueInput, Metadata, QueueConfig } from '../types.js';

/** Queue names: printable, no separators that could collide in composite keys. */
export const QUEUE_NAME = /^[A-Za-z0-9_.:/-]{1,128}$/;
export const METADATA_KEY = /^[A-Za-z0-9_.-]{1,64}$/;
export const MAX_METADATA_PAIRS = 4;
const MAX_KEY_LENGTH = 512;

export function checkQueueName(name: unknown): string {
  if (typeof name !== 'string' || !QUEUE_NAME.test(name))
    throw new InvalidArgumentError(`queue name ${JSON.stringify(name)} must match ${QUEUE_NAME.source}`, {
      path: 'queue',
    });
  return name;
}

export function checkMetadata(metadata: unknown, path: string): Metadata | null {
  if (metadata === undefined || metadata === null) return null;
  if (typeof metadata !== 'object' || Array.isArray(metadata))
    throw new InvalidArgumentError(`${path} must be an object of string pairs`, { path });
  const entries = Object.entries(metadata as Record<string, unknown>);
  if (entries.length > MAX_METADATA_PAIRS)
    throw new InvalidArgumentError(
      `${path} has ${entries.length} pairs; at most ${MAX_METADATA_PAIRS} are allowed`,
      {
        path,
      },
    );
  for (const [k, v] of entries) {
    if (!METADATA_KEY.test(k))
      throw new InvalidArgumentError(`${path} key ${JSON.stringify(k)} must match ${METADATA_KEY.source}`, {
        path: `${path}.${k}`,
      });
    if (typeof v !== 'string' || v.length > 256)
      throw new InvalidArgumentError(`${path}.${k} must be a string of at most 256 characters`, {
        path: `${path}.${k}`,
      });
  }
  return entries.length === 0 ? null : (metadata as Metadata);
}

function checkInteger(value: unknown, path: string, min: number): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min)
    throw new InvalidArgumentError(`${path} must be an integer >= ${min}`, { path, value });
  return value;
}

function checkKey(value: unknown, path: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_KEY_LENGTH)
    throw new InvalidArgumentError(
      `${path} must be a non-empty string of at most ${MAX_KEY_LENGTH} characters`,
      {
        path,
      },
    );
  return value;
}

/** Validates one enqueue and serializes its payload; the size limit applies to the serialized bytes. */
export function toNewMessage(input: EnqueueInput, now: number, maxPayloadBytes: number): NewMessage {
  const queue = checkQueueName(input.queue);
  let payload: string | undefined;
  try {
    payload = JSON.stringify(input.payload);
  } catch (error) {
    throw new InvalidArgumentError(`payload is not serializable as JSON: ${String(error)}`, {
      path: 'payload',
    });
  }
  if (payload === undefined)
    throw new InvalidArgumentError('payload must be a JSON value (use null for none)', { path: 'payload' });
  const bytes = Buffer.byteLength(payload);
  if (bytes > maxPayloadBytes) throw new PayloadTooLargeError(queue, bytes, maxPayloadBytes);
  const priority = input.priority === undefined ? now : input.priority;
  if (typeof priority !== 'number' || !Number.isSafeInteger(priority))
    throw new InvalidArgumentError('priority must be a safe integer', { path: 'priority', value: priority });
  return {
    queue,
    payload,
    priority,
    delayMs: checkInteger(input.delayMs, 'delayMs', 0),
    idempotencyKey: checkKey(input.idempotencyKey, 'idempotencyKey'),
    metadata: checkMetadata(input.metadata, 'metadata'),
    exclusivityKey: checkKey(input.exclusivityKey, 'exclusivityKey'),
    maxAttempts: checkInteger(input.maxAttempts, 'maxAttempts', 1),
  };
}

export function checkDequeue(req: DequeueRequest): void {
  checkQueueName(req.queue);
  checkInteger(req.max, 'max', 1);
  if (req.max > 10_000) throw new InvalidArgumentError('max must be at most 10000', { path: 'max' });
  checkInteger(req.leaseMs, 'leaseMs', 1);
  checkMetadata(req.filter, 'filter');
}

export function checkConfigPatch(patch: Partial<QueueConfig>): Partial<QueueConfig> {
  const out: Partial<QueueConfig> = {};
  for (const [k, v] of Object.entries(patch)) {
    switch (k) {
      case 'leaseMs':
      case 'maxAttempts':
        out[k] = checkInteger(v, k, 1) ?? undefined;
        break;
      case 'delayMs':
      case 'retentionMs':
        out[k] = checkInteger(v, k, 0) ?? undefined;
        break;
      case 'enqueuePaused':
      case 'dequeuePaused':
      case 'exclusive':
        if (typeof v !== 'boolean') throw new InvalidArgumentError(`${k} must be a boolean`, { path: k });
        out[k] = v;
        break;
      default:
        throw new InvalidArgumentError(`unknown queue setting "${k}"`, { path: k });
    }
  }
  for (const k of Object.keys(out) as (keyof QueueConfig)[]) if (out[k] === undefined) delete out[k];
  return out;
}
