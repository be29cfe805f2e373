import { describe, expect, it } from 'vitest';
import { CosmosError } from '../../errors.js';
import { PoolTree } from './pool-tree.js';
import type { PoolConfig } from './pool-tree.js';

function configError(capacity: number, pools: PoolConfig[]): CosmosError {
  try {
    new PoolTree(capacity, pools);
  } catch (e) {
    if (e instanceof CosmosError) return e;
    throw e;
  }
  throw new Error('expected the config to be rejected');
}

describe('PoolTree validation', () => {
  const cases: [string, number, PoolConfig[], RegExp][] = [
    ['zero capacity', 0, [], /capacity must be a positive integer/],
    ['fractional capacity', 2.5, [], /capacity must be a positive integer/],
    ['an empty name', 4, [{ name: '' }], /non-empty name/],
    ['a duplicate name', 4, [{ name: 'a' }, { name: 'a' }], /pool "a" is defined twice/],
    [
      'an unknown parent',
      4,
      [{ name: 'a', parent: 'ghost' }],
      /pool "a" has parent "ghost", which is not a pool/,
    ],
    ['a pool that is its own parent', 4, [{ name: 'a', parent: 'a' }], /"a" → "a" form a cycle/],
    [
      'a longer cycle',
      4,
      [{ name: 'ok' }, { name: 'a', parent: 'c' }, { name: 'b', parent: 'a' }, { name: 'c', parent: 'b' }],
      /"a" → "c" → "b" → "a" form a cycle/,
    ],
    [
      'a negative reservation',
      4,
      [{ name: 'a', reserved: -1 }],
      /pool "a": reserved must be an integer >= 0/,
    ],
    ['a negative max', 4, [{ name: 'a', max: -2 }], /pool "a": max must be an integer >= 1/],
    ['a zero max', 4, [{ name: 'a', max: 0 }], /pool "a": max must be an integer >= 1/],
    ['a fractional reservation', 4, [{ name: 'a', reserved: 1.5 }], /pool "a": reserved must be an integer/],
    ['a reservation above its own max', 4, [{ name: 'a', reserved: 3, max: 2 }], /pool "a" reserves 3 slots/],
    [
      'a reservation above an ancestor max',
      8,
      [
        { name: 'p', max: 2 },
        { name: 'c', parent: 'p', reserved: 3 },
      ],
      /pool "c" reserves 3 slots but can never run more than 2/,
    ],
    [
      'top-level reservations above the capacity',
      4,
      [
        { name: 'a', reserved: 3 },
        { name: 'b', reserved: 2 },
      ],
      /top-level pools reserve 5 slots \("a" 3, "b" 2\), more than the node's capacity of 4/,
    ],
    [
      "children reserving more than their parent's reservation",
      8,
      [
        { name: 'media', reserved: 4 },
        { name: 'thumbs', parent: 'media', reserved: 3 },
        { name: 'encode', parent: 'media', reserved: 2 },
      ],
      /children of pool "media" reserve 5 slots \("thumbs" 3, "encode" 2\), more than "media" reserves \(4\)/,
    ],
    [
      'children of an unreserved parent reserving more than it can run',
      8,
      [
        { name: 'batch', max: 3 },
        { name: 'x', parent: 'batch', reserved: 2 },
        { name: 'y', parent: 'batch', reserved: 2 },
      ],
      /children of pool "batch" reserve 4 slots .* more than "batch" can run \(3\)/,
    ],
  ];
  for (const [what, capacity, pools, message] of cases)
    it(`rejects ${what}`, () => {
      const e = configError(capacity, pools);
      expect(e.code).toBe('config_invalid');
      expect(e.message).toMatch(message);
    });

  it('accepts a nested config declared children first, and numbers parents before children', () => {
    const tree = new PoolTree(8, [
      { name: 'thumbs', parent: 'media', reserved: 2 },
      { name: 'encode', parent: 'media' },
      { name: 'media', reserved: 4 },
      { name: 'batch' },
    ]);
    expect(tree.id('media')).toBeLessThan(tree.id('thumbs') as number);
    expect(tree.id('media')).toBeLessThan(tree.id('encode') as number);
    expect(tree.snapshot().map((p) => [p.name, p.parent])).toEqual([
      ['media', undefined],
      ['thumbs', 'media'],
      ['encode', 'media'],
      ['batch', undefined],
    ]);
  });

  it('bounds each pool by its own max and its ancestors', () => {
    const tree = new PoolTree(8, [
      { name: 'p', max: 5 },
      { name: 'c', parent: 'p', max: 6 },
      { name: 'free' },
    ]);
    expect(tree.bound(tree.id('c') as number)).toBe(5);
    expect(tree.bound(tree.id('free') as number)).toBe(8);
  });
});

describe('PoolTree availability', () => {
  const tree = (): PoolTree =>
    new PoolTree(8, [
      { name: 'media', reserved: 4 },
      { name: 'thumbs', parent: 'media', reserved: 2 },
      { name: 'encode', parent: 'media', max: 7 },
      { name: 'batch' },
    ]);
  const availOf = (t: PoolTree): Record<string, number | undefined> =>
    Object.fromEntries(
      ['media', 'thumbs', 'encode', 'batch'].map((n) => [n, t.availability()[t.id(n) as number]]),
    );

  it('lends idle reservations: with nothing waiting every pool may use every free slot up to its max', () => {
    expect(availOf(tree())).toEqual({ media: 8, thumbs: 8, encode: 7, batch: 8 });
  });

  it('holds a short reservation back from siblings, and from items placed directly in the parent', () => {
    const t = tree();
    t.addWaiting(t.id('thumbs') as number, true, 1);
    // thumbs holds 2 against encode and media's own items; media holds 4 against batch.
    expect(availOf(t)).toEqual({ media: 6, thumbs: 8, encode: 6, batch: 4 });
    t.addRunning(t.id('thumbs') as number, 1, true, 1);
    // thumbs is now short by 1 and media by 3.
    expect(availOf(t)).toEqual({ media: 6, thumbs: 7, encode: 6, batch: 4 });
  });

  it('does not count opportunistic work as filling a reservation, nor as work that claims it', () => {
    const t = tree();
    t.addWaiting(t.id('thumbs') as number, false, 1);
    expect(availOf(t).batch).toBe(8);
    t.addWaiting(t.id('thumbs') as number, true, 1);
    t.addRunning(t.id('thumbs') as number, 2, false, 1);
    // thumbs still holds its full 2: the opportunistic slots do not serve its normal work.
    expect(availOf(t)).toEqual({ media: 4, thumbs: 6, encode: 4, batch: 2 });
  });

  it('freeWhileNothingWaits agrees with availability() whenever nothing waits', () => {
    const t = new PoolTree(6, [
      { name: 'a', reserved: 2, max: 4 },
      { name: 'a1', parent: 'a', reserved: 1 },
      { name: 'b', max: 3 },
    ]);
    const pools = ['a', 'a1', 'b'].map((n) => t.id(n) as number);
    const agree = (): void => {
      const avail = t.availability();
      for (const id of [0, ...pools]) expect(t.freeWhileNothingWaits(id)).toBe(avail[id]);
    };
    agree();
    const a1 = t.id('a1') as number;
    const b = t.id('b') as number;
    t.addRunning(a1, 2, true, 1);
    agree();
    t.addRunning(b, 3, false, 1);
    agree();
    t.addRunning(a1, 1, true, 1);
    agree();
    expect(t.freeWhileNothingWaits(a1)).toBe(0);
  });

  it('availabilityIf answers as if more were running, and leaves the counters untouched', () => {
    const t = tree();
    const batch = t.id('batch') as number;
    const encode = t.id('encode') as number;
    t.addRunning(encode, 4, true, 1);
    expect(t.availability()[encode]).toBe(3);
    // encode's own max (7 − 4) binds until batch eats into the node's last free slots.
    expect(t.availabilityIf(batch, 1)[encode]).toBe(3);
    expect(t.availabilityIf(batch, 2)[encode]).toBe(2);
    expect(t.availabilityIf(batch, 4)[encode]).toBe(0);
    expect(t.availability()[encode]).toBe(3);
    expect(t.running(encode)).toEqual({ slots: 4, items: 1 });
    expect(t.running()).toEqual({ slots: 4, items: 1 });
  });
});
