import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Gatherer } from './gather.js';

describe('Gatherer', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const gather = (max: number, waitMs: number): { g: Gatherer<number>; out: number[][] } => {
    const out: number[][] = [];
    return { g: new Gatherer<number>(max, waitMs, (items) => out.push(items)), out };
  };

  it('hands over a full batch at once, and a partial one after waitMs', () => {
    const { g, out } = gather(3, 10);
    for (const n of [1, 2, 3, 4]) g.add(n);
    expect(out).toEqual([[1, 2, 3]]);
    vi.advanceTimersByTime(9);
    expect(out).toEqual([[1, 2, 3]]);
    vi.advanceTimersByTime(1);
    expect(out).toEqual([[1, 2, 3], [4]]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('measures waitMs from the first item of each batch, not from the timer armed for an earlier one', () => {
    const { g, out } = gather(2, 10);
    g.add(1);
    vi.advanceTimersByTime(6);
    g.add(2); // full: goes now, and the timer armed at 0 keeps running
    g.add(3); // first of the next batch, at 6
    vi.advanceTimersByTime(4); // the timer fires at 10: item 3 has waited 4 ms
    expect(out).toEqual([[1, 2]]);
    vi.advanceTimersByTime(5);
    expect(out).toEqual([[1, 2]]);
    vi.advanceTimersByTime(1); // 16 = 6 + 10
    expect(out).toEqual([[1, 2], [3]]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('arms one timer for a burst of full batches, and stops it when nothing waits', () => {
    const { g, out } = gather(2, 10);
    for (let n = 0; n < 100; n++) g.add(n);
    expect(out).toHaveLength(50);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(10);
    expect(vi.getTimerCount()).toBe(0);
    expect(out).toHaveLength(50);
  });

  it('close hands over what waits and leaves no timer', () => {
    const { g, out } = gather(5, 10);
    g.add(1);
    g.add(2);
    g.close();
    expect(out).toEqual([[1, 2]]);
    expect(g.waiting).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});
