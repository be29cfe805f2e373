import { describe, expect, it } from 'vitest';
import { retryDelay } from './backoff.js';

const b = { initialMs: 100, maxMs: 1_000, factor: 2, jitter: false };

describe('retryDelay', () => {
  it('grows exponentially from the first retry and stops at the cap', () => {
    expect([2, 3, 4, 5, 6, 7].map((n) => retryDelay(b, n))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });

  it('full jitter draws from [0, computed]', () => {
    const j = { ...b, jitter: true };
    expect(retryDelay(j, 4, () => 0)).toBe(0);
    expect(retryDelay(j, 4, () => 0.5)).toBe(200);
    expect(retryDelay(j, 4, () => 0.999)).toBe(400);
  });
});
