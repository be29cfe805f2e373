import { describe, expect, it } from 'vitest';
import type { CosmosError } from '../errors.js';
import { checkConfigPatch, checkDequeue, checkMetadata, checkQueueName, toNewMessage } from './validate.js';

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    return (e as CosmosError).code;
  }
  return 'none';
};

describe('validate', () => {
  it('accepts sensible queue names and refuses others', () => {
    expect(checkQueueName('encoder.encode:v2/batch-1')).toBe('encoder.encode:v2/batch-1');
    for (const bad of ['', 'with space', 'x'.repeat(129), 'tab\t', 42])
      expect(codeOf(() => checkQueueName(bad))).toBe('invalid_argument');
  });

  it('serializes the payload, defaults the priority to now and keeps nulls for queue defaults', () => {
    expect(toNewMessage({ queue: 'q', payload: { a: 1 } }, 1234, 100)).toEqual({
      queue: 'q',
      payload: '{"a":1}',
      priority: 1234,
      delayMs: null,
      idempotencyKey: null,
      metadata: null,
      exclusivityKey: null,
      maxAttempts: null,
    });
  });

  it('measures the payload limit in bytes of the serialized form', () => {
    expect(codeOf(() => toNewMessage({ queue: 'q', payload: 'é'.repeat(5) }, 0, 11))).toBe(
      'payload_too_large',
    );
    expect(toNewMessage({ queue: 'q', payload: 'é'.repeat(5) }, 0, 12).payload).toBe('"ééééé"');
  });

  it('refuses payloads JSON cannot carry', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(codeOf(() => toNewMessage({ queue: 'q', payload: cyclic }, 0, 100))).toBe('invalid_argument');
    expect(codeOf(() => toNewMessage({ queue: 'q', payload: () => 1 }, 0, 100))).toBe('invalid_argument');
  });

  it('limits metadata to four string pairs with safe keys', () => {
    expect(checkMetadata({ a: '1', b: '2', c: '3', d: '4' }, 'm')).toEqual({
      a: '1',
      b: '2',
      c: '3',
      d: '4',
    });
    expect(checkMetadata({}, 'm')).toBeNull();
    expect(codeOf(() => checkMetadata({ a: '1', b: '2', c: '3', d: '4', e: '5' }, 'm'))).toBe(
      'invalid_argument',
    );
    expect(codeOf(() => checkMetadata({ a: 1 }, 'm'))).toBe('invalid_argument');
    expect(codeOf(() => checkMetadata({ "it's": 'x' }, 'm'))).toBe('invalid_argument');
    expect(codeOf(() => checkMetadata(['a'], 'm'))).toBe('invalid_argument');
  });

  it('checks dequeue requests and config patches', () => {
    expect(codeOf(() => checkDequeue({ queue: 'q', max: 10_001 }))).toBe('invalid_argument');
    expect(codeOf(() => checkDequeue({ queue: 'q', max: 1, leaseMs: 0 }))).toBe('invalid_argument');
    expect(checkConfigPatch({ leaseMs: 10, exclusive: true })).toEqual({ leaseMs: 10, exclusive: true });
    expect(codeOf(() => checkConfigPatch({ delayMs: -1 }))).toBe('invalid_argument');
    expect(codeOf(() => checkConfigPatch({ dequeuePaused: 'yes' as unknown as boolean }))).toBe(
      'invalid_argument',
    );
  });
});
