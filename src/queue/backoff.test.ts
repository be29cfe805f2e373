import { describe, expect, it } from 'vitest';
import { Backoff, pause } from './backoff.js';

describe('Backoff', () => {
  it('grows to its cap with the failures and starts over after a success', () => {
    const b = new Backoff(100, 1_000, () => 0.999);
    const waits = Array.from({ length: 6 }, () => b.next());
    expect(waits).toEqual([99, 199, 399, 799, 999, 999]);
    expect(b.failures).toBe(6);
    b.reset();
    expect(b.next()).toBe(99);
  });

  it('never waits less than half the minimum, however small the draw', () => {
    const b = new Backoff(100, 1_000, () => 0);
    expect(b.next()).toBe(50);
    expect(b.next()).toBe(50);
  });
});

describe('pause', () => {
  it('ends early when its signal aborts', async () => {
    const ac = new AbortController();
    const started = Date.now();
    const p = pause(10_000, ac.signal);
    ac.abort();
    await p;
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
