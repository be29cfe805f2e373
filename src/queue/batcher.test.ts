import { describe, expect, it } from 'vitest';
import { Batcher } from './batcher.js';

describe('Batcher', () => {
  it('gathers the calls of one event-loop turn into one flush, answering each in order', async () => {
    const flushes: number[][] = [];
    const b = new Batcher<number, number>((items) => {
      flushes.push(items);
      return Promise.resolve(items.map((i) => i * 10));
    });
    const answers = await Promise.all([1, 2, 3].map((i) => b.add(i)));
    expect(answers).toEqual([10, 20, 30]);
    expect(flushes).toEqual([[1, 2, 3]]);
  });

  it('flushes early at its size limit and rejects every caller of a failed flush', async () => {
    const flushes: number[][] = [];
    const b = new Batcher<number, number>((items) => {
      flushes.push(items);
      return items.includes(5) ? Promise.reject(new Error('db down')) : Promise.resolve(items);
    }, 2);
    const results = await Promise.allSettled([1, 2, 3, 4, 5].map((i) => b.add(i)));
    expect(flushes).toEqual([[1, 2], [3, 4], [5]]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'rejected',
    ]);
  });

  it('idle() waits for flushes in flight', async () => {
    let release!: () => void;
    const b = new Batcher<number, number>((items) => new Promise((r) => (release = () => r(items))));
    const p = b.add(1);
    const idle = b.idle();
    await new Promise((r) => setImmediate(r));
    release();
    await idle;
    expect(await p).toBe(1);
  });
});
