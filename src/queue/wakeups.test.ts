import { describe, expect, it } from 'vitest';
import { Wakeups } from './wakeups.js';

describe('Wakeups', () => {
  it('wakes the waiters of one queue only', async () => {
    const w = new Wakeups();
    const a = w.wait('a', 10_000);
    const b = w.wait('b', 20);
    w.notify('a');
    expect(await a).toBe(true);
    expect(await b).toBe(false);
    expect(w.waiting).toBe(0);
  });

  it('times out, honours abort, and notifyAll wakes everyone', async () => {
    const w = new Wakeups();
    expect(await w.wait('a', 1)).toBe(false);
    const ac = new AbortController();
    const aborted = w.wait('a', 10_000, ac.signal);
    ac.abort();
    expect(await aborted).toBe(false);
    const all = [w.wait('x', 10_000), w.wait('y', 10_000)];
    w.notifyAll();
    expect(await Promise.all(all)).toEqual([true, true]);
  });
});
