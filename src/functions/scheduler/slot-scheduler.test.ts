import { describe, expect, it } from 'vitest';
import { CosmosError } from '../../errors.js';
import { SlotScheduler } from './slot-scheduler.js';
import type { SchedulerItem } from './slot-scheduler.js';

function errorOf(f: () => unknown): CosmosError {
  try {
    f();
  } catch (e) {
    if (e instanceof CosmosError) return e;
    throw e;
  }
  throw new Error('expected a CosmosError');
}

const ids = (items: SchedulerItem[]): string[] => items.map((i) => i.id);
const single = (capacity: number): SlotScheduler => new SlotScheduler({ capacity, pools: [{ name: 'p' }] });

function submitAll(s: SlotScheduler, pool: string, priority: number, names: string[], extra = {}): void {
  for (const id of names) s.submit({ id, pool, priority, ...extra });
}

describe('SlotScheduler: priority', () => {
  it('starts a later high-priority item first when a slot of a saturated pool frees', () => {
    const s = single(2);
    submitAll(s, 'p', 10, ['low1', 'low2']);
    expect(ids(s.startable())).toEqual(['low1', 'low2']);
    submitAll(s, 'p', 10, ['low3', 'low4']);
    s.submit({ id: 'high', pool: 'p', priority: 1 });
    expect(s.next()).toBeUndefined();
    s.finish('low1');
    expect(s.next()?.id).toBe('high');
    expect(s.next()).toBeUndefined();
    s.finish('low2');
    expect(ids(s.startable())).toEqual(['low3']);
  });

  it('ranks across pools, and breaks ties by submission order', () => {
    const s = new SlotScheduler({ capacity: 1, pools: [{ name: 'a' }, { name: 'b' }] });
    s.submit({ id: 'a1', pool: 'a', priority: 5 });
    s.submit({ id: 'b1', pool: 'b', priority: 5 });
    s.submit({ id: 'b0', pool: 'b', priority: 3 });
    s.submit({ id: 'a2', pool: 'a', priority: 5 });
    const order: string[] = [];
    for (let i = 0; i < 4; i++) {
      const item = s.next() as SchedulerItem;
      order.push(item.id);
      expect(s.next()).toBeUndefined();
      s.finish(item.id);
    }
    expect(order).toEqual(['b0', 'a1', 'b1', 'a2']);
  });

  it('lets a smaller item pass a bigger one that does not fit the free slots', () => {
    const s = single(3);
    s.submit({ id: 'run', pool: 'p', priority: 0, slots: 2 });
    s.submit({ id: 'big', pool: 'p', priority: 1, slots: 2 });
    s.submit({ id: 'small', pool: 'p', priority: 9 });
    expect(ids(s.startable())).toEqual(['run', 'small']);
    s.finish('run');
    expect(ids(s.startable())).toEqual(['big']);
    expect(s.snapshot().running).toBe(3);
  });
});

describe('SlotScheduler: opportunistic work', () => {
  it('takes idle slots, but never one that waiting normal work could use', () => {
    const s = single(2);
    submitAll(s, 'p', 10, ['n1', 'n2', 'n3']);
    s.submit({ id: 'o1', pool: 'p', priority: -100, opportunistic: true });
    expect(ids(s.startable())).toEqual(['n1', 'n2']);
    s.finish('n1');
    expect(ids(s.startable())).toEqual(['n3']);
    s.finish('n2');
    expect(ids(s.startable())).toEqual(['o1']);
  });

  it('is not preempted, and loses the next turnover to normal work', () => {
    const s = single(2);
    s.submit({ id: 'o1', pool: 'p', priority: 0, opportunistic: true });
    s.submit({ id: 'o2', pool: 'p', priority: 0, opportunistic: true });
    s.submit({ id: 'o3', pool: 'p', priority: 0, opportunistic: true });
    expect(ids(s.startable())).toEqual(['o1', 'o2']);
    s.submit({ id: 'n1', pool: 'p', priority: 50 });
    expect(s.next()).toBeUndefined();
    expect(s.running('p')).toBe(2);
    s.finish('o1');
    expect(ids(s.startable())).toEqual(['n1']);
    s.finish('o2');
    expect(ids(s.startable())).toEqual(['o3']);
  });

  it('leaves an idle slot free when a waiting normal item needs it to fit', () => {
    const s = single(2);
    s.submit({ id: 'n', pool: 'p', priority: 0 });
    s.submit({ id: 'big', pool: 'p', priority: 0, slots: 2 });
    s.submit({ id: 'o', pool: 'p', priority: 0, opportunistic: true });
    expect(ids(s.startable())).toEqual(['n']);
    s.finish('n');
    expect(ids(s.startable())).toEqual(['big']);
    s.finish('big');
    expect(ids(s.startable())).toEqual(['o']);
  });

  it('uses slots that waiting normal work cannot use (its pool is at its max)', () => {
    const s = new SlotScheduler({ capacity: 3, pools: [{ name: 'capped', max: 1 }, { name: 'other' }] });
    submitAll(s, 'capped', 0, ['c1', 'c2']);
    s.submit({ id: 'o1', pool: 'other', priority: 0, opportunistic: true });
    s.submit({ id: 'o2', pool: 'capped', priority: 0, opportunistic: true });
    expect(ids(s.startable())).toEqual(['c1', 'o1']);
    expect(s.waiting()).toBe(2);
  });

  it('uses slots that waiting normal work cannot use (its function limit)', () => {
    const s = single(2);
    s.setLimit('f', { max: 1 });
    submitAll(s, 'p', 0, ['f1', 'f2'], { fn: 'f' });
    s.submit({ id: 'o', pool: 'p', priority: 0, opportunistic: true });
    expect(ids(s.startable())).toEqual(['f1', 'o']);
  });
});

describe('SlotScheduler: function limits', () => {
  it('caps running items per function without blocking other items behind them', () => {
    const s = single(8);
    s.setLimit('enc', { max: 2 });
    submitAll(s, 'p', 0, ['e1', 'e2', 'e3', 'e4'], { fn: 'enc' });
    submitAll(s, 'p', 5, ['x1', 'x2']);
    expect(ids(s.startable())).toEqual(['e1', 'e2', 'x1', 'x2']);
    s.finish('e1');
    expect(ids(s.startable())).toEqual(['e3']);
    s.finish('x1');
    expect(s.next()).toBeUndefined();
  });

  it('caps running items per (function, key); unkeyed items count only against max', () => {
    const s = single(8);
    s.setLimit('t', { perKey: 1, max: 4 });
    submitAll(s, 'p', 0, ['k1a', 'k1b', 'k1c'], { fn: 't', key: 'k1' });
    submitAll(s, 'p', 1, ['k2a'], { fn: 't', key: 'k2' });
    submitAll(s, 'p', 2, ['u1', 'u2', 'u3'], { fn: 't' });
    s.submit({ id: 'other', pool: 'p', priority: 3, key: 'k1' });
    expect(ids(s.startable())).toEqual(['k1a', 'k2a', 'u1', 'u2', 'other']);
    s.finish('u1');
    expect(ids(s.startable())).toEqual(['u3']);
    s.finish('k1a');
    expect(ids(s.startable())).toEqual(['k1b']);
  });

  it('applies across pools and to opportunistic items; a blocked item in one pool does not block another pool', () => {
    const s = new SlotScheduler({ capacity: 4, pools: [{ name: 'a' }, { name: 'b' }] });
    s.setLimit('f', { max: 1 });
    s.submit({ id: 'fa', pool: 'a', priority: 0, fn: 'f' });
    s.submit({ id: 'fb', pool: 'b', priority: 0, fn: 'f' });
    s.submit({ id: 'fo', pool: 'b', priority: 0, fn: 'f', opportunistic: true });
    s.submit({ id: 'b1', pool: 'b', priority: 9 });
    expect(ids(s.startable())).toEqual(['fa', 'b1']);
    s.finish('fa');
    expect(ids(s.startable())).toEqual(['fb']);
    s.finish('fb');
    expect(ids(s.startable())).toEqual(['fo']);
  });

  it('lowering a limit stops nothing but holds new starts until the count drops below it; {} removes it', () => {
    const s = single(8);
    submitAll(s, 'p', 0, ['f1', 'f2', 'f3', 'f4', 'f5'], { fn: 'f' });
    expect(s.startable()).toHaveLength(5);
    submitAll(s, 'p', 0, ['f6', 'f7'], { fn: 'f' });
    s.setLimit('f', { max: 3 });
    expect(s.running()).toBe(5);
    s.finish('f1');
    s.finish('f2');
    expect(s.next()).toBeUndefined();
    s.finish('f3');
    expect(ids(s.startable())).toEqual(['f6']);
    s.setLimit('f', {});
    expect(ids(s.startable())).toEqual(['f7']);
  });

  it('raising a limit unblocks parked items at once', () => {
    const s = single(8);
    s.setLimit('f', { max: 1, perKey: 1 });
    submitAll(s, 'p', 0, ['a1', 'a2'], { fn: 'f', key: 'a' });
    submitAll(s, 'p', 0, ['b1'], { fn: 'f', key: 'b' });
    expect(ids(s.startable())).toEqual(['a1']);
    s.setLimit('f', { max: 2, perKey: 1 });
    expect(ids(s.startable())).toEqual(['b1']);
    s.setLimit('f', { perKey: 2 });
    expect(ids(s.startable())).toEqual(['a2']);
  });

  it('rejects limits that are not positive integers', () => {
    const s = single(2);
    expect(() => s.setLimit('f', { max: 0 })).toThrow(expect.objectContaining({ code: 'invalid_argument' }));
    expect(() => s.setLimit('f', { perKey: -1 })).toThrow(/perKey must be a positive integer/);
  });
});

describe('SlotScheduler: riders', () => {
  it('starts on a leader the items next() would start, in its order, taking no slots', () => {
    const s = single(1);
    submitAll(s, 'p', 10, ['lead', 'r1', 'r2']);
    s.submit({ id: 'first', pool: 'p', priority: 5 });
    expect(s.next()?.id).toBe('first');
    expect(ids([s.ride('first')!, s.ride('first')!, s.ride('first')!])).toEqual(['lead', 'r1', 'r2']);
    expect(s.ride('first')).toBeUndefined();
    expect(s.snapshot()).toMatchObject({ running: 1, runningItems: 4, waiting: 0 });
    // Riders free no slots: the node stays full until the leader finishes.
    s.submit({ id: 'later', pool: 'p', priority: 0 });
    s.finish('lead');
    s.finish('r1');
    expect(s.next()).toBeUndefined();
    s.finish('first');
    expect(s.next()?.id).toBe('later');
  });

  it('takes only what accept allows, and only of the leader class; a better item elsewhere stops it', () => {
    const s = new SlotScheduler({ capacity: 2, pools: [{ name: 'a' }, { name: 'b' }] });
    s.submit({ id: 'lead', pool: 'a', priority: 1 });
    s.submit({ id: 'big', pool: 'a', priority: 2, slots: 2 });
    s.submit({ id: 'a1', pool: 'a', priority: 3 });
    expect(s.next()?.id).toBe('lead');
    // The best waiting item needs two slots: nothing rides ahead of it.
    expect(s.ride('lead')).toBeUndefined();
    expect(s.cancel('big')).toBe(true);
    expect(s.ride('lead', () => false)).toBeUndefined();
    s.submit({ id: 'b1', pool: 'b', priority: 0 });
    // b1 would get the next slot: a1 may not ride before it.
    expect(s.ride('lead')).toBeUndefined();
    expect(s.next()?.id).toBe('b1');
    expect(s.ride('lead')?.id).toBe('a1');
    expect(s.ride('a1')).toBeUndefined();
  });

  it('counts riders against function limits while they run', () => {
    const s = single(1);
    s.setLimit('f', { max: 2, perKey: 1 });
    s.submit({ id: 'lead', pool: 'p', priority: 0, fn: 'f', key: 'k' });
    s.submit({ id: 'same-key', pool: 'p', priority: 1, fn: 'f', key: 'k' });
    s.submit({ id: 'other-key', pool: 'p', priority: 2, fn: 'f', key: 'j' });
    s.submit({ id: 'third', pool: 'p', priority: 3, fn: 'f', key: 'i' });
    expect(s.next()?.id).toBe('lead');
    expect(s.ride('lead')?.id).toBe('other-key');
    expect(s.ride('lead')).toBeUndefined();
    s.finish('other-key');
    expect(s.ride('lead')?.id).toBe('third');
  });

  it('never lets normal work ride behind opportunistic work, nor opportunistic work ride while normal work waits', () => {
    const s = single(2);
    s.submit({ id: 'opp', pool: 'p', priority: 0, opportunistic: true });
    s.submit({ id: 'opp2', pool: 'p', priority: 0, opportunistic: true });
    expect(s.next()?.id).toBe('opp');
    s.submit({ id: 'normal', pool: 'p', priority: 9 });
    expect(s.ride('opp')).toBeUndefined();
    expect(s.next()?.id).toBe('normal');
    s.submit({ id: 'normal2', pool: 'p', priority: 9 });
    expect(s.ride('opp')).toBeUndefined();
    expect(s.ride('normal')?.id).toBe('normal2');
    expect(s.ride('opp')?.id).toBe('opp2');
  });
});

describe('SlotScheduler: startNow, the path of a node that keeps up', () => {
  it('starts an item at once when nothing waits and it fits, as submit and next would', () => {
    const s = single(2);
    expect(s.startNow({ id: 'a', pool: 'p', priority: 5 })).toBe(true);
    expect(s.startNow({ id: 'b', pool: 'p', priority: 5, opportunistic: true })).toBe(true);
    expect(s.snapshot()).toMatchObject({ running: 2, runningItems: 2, waiting: 0 });
    expect(s.finish('a').id).toBe('a');
    expect(s.running()).toBe(1);
  });

  it('refuses, changing nothing, while anything waits, when the pool is full, or when a limit is reached', () => {
    const s = new SlotScheduler({ capacity: 3, pools: [{ name: 'p' }, { name: 'small', max: 1 }] });
    expect(s.startNow({ id: 'x', pool: 'small', priority: 1 })).toBe(true);
    // The pool's max, not the node's free slots, is what stops this one.
    expect(s.startNow({ id: 'y', pool: 'small', priority: 0 })).toBe(false);
    expect(s.snapshot()).toMatchObject({ running: 1, waiting: 0 });
    s.submit({ id: 'y', pool: 'small', priority: 0 });
    // Something waits (y): even an item that would fit goes through the queue, behind better work.
    expect(s.startNow({ id: 'z', pool: 'p', priority: 9 })).toBe(false);
    s.finish('x');
    expect(s.next()?.id).toBe('y');

    s.setLimit('f', { max: 1, perKey: 1 });
    expect(s.startNow({ id: 'f1', pool: 'p', priority: 1, fn: 'f', key: 'k' })).toBe(true);
    expect(s.startNow({ id: 'f2', pool: 'p', priority: 1, fn: 'f', key: 'other' })).toBe(false);
    s.setLimit('f', { perKey: 1 });
    expect(s.startNow({ id: 'f3', pool: 'p', priority: 1, fn: 'f', key: 'k' })).toBe(false);
    expect(s.startNow({ id: 'f4', pool: 'p', priority: 1, fn: 'f', key: 'other' })).toBe(true);
    expect(s.snapshot()).toMatchObject({ running: 3, waiting: 0 });
  });

  it('rejects a bad item exactly as submit does', () => {
    const s = single(2);
    expect(s.startNow({ id: 'a', pool: 'p', priority: 1 })).toBe(true);
    expect(errorOf(() => s.startNow({ id: 'a', pool: 'p', priority: 1 })).message).toMatch(
      /already waiting or running/,
    );
    expect(errorOf(() => s.startNow({ id: 'b', pool: 'nope', priority: 1 })).message).toMatch(/unknown pool/);
    expect(errorOf(() => s.startNow({ id: 'c', pool: 'p', priority: 1, slots: 3 })).message).toMatch(
      /slots must be/,
    );
    expect(s.snapshot()).toMatchObject({ running: 1, waiting: 0 });
  });
});

describe('SlotScheduler: API', () => {
  it('cancels only waiting items, and a canceled item never starts', () => {
    const s = single(1);
    submitAll(s, 'p', 0, ['a', 'b', 'c']);
    expect(s.next()?.id).toBe('a');
    expect(s.cancel('a')).toBe(false);
    expect(s.cancel('b')).toBe(true);
    expect(s.cancel('b')).toBe(false);
    expect(s.cancel('nope')).toBe(false);
    expect(s.waiting()).toBe(1);
    s.finish('a');
    expect(ids(s.startable())).toEqual(['c']);
  });

  it('finish frees the slots and returns the item; unknown or waiting ids are invalid_argument', () => {
    const s = single(1);
    const item = { id: 'a', pool: 'p', priority: 0, payload: 42 };
    const typed = new SlotScheduler<typeof item>({ capacity: 1, pools: [{ name: 'p' }] });
    typed.submit(item);
    expect(typed.next()).toBe(item);
    expect(typed.finish('a')).toBe(item);
    expect(() => typed.finish('a')).toThrow(expect.objectContaining({ code: 'invalid_argument' }));
    s.submit({ id: 'w', pool: 'p', priority: 0, slots: 1 });
    s.submit({ id: 'w2', pool: 'p', priority: 0 });
    s.next();
    expect(() => s.finish('w2')).toThrow(/waiting, not running/);
  });

  it('validates items', () => {
    const s = new SlotScheduler({ capacity: 4, pools: [{ name: 'p', max: 2 }] });
    s.submit({ id: 'x', pool: 'p', priority: 0 });
    const bad: [SchedulerItem, RegExp][] = [
      [{ id: 'y', pool: 'ghost', priority: 0 }, /unknown pool "ghost"/],
      [{ id: 'x', pool: 'p', priority: 0 }, /"x" is already waiting or running/],
      [{ id: '', pool: 'p', priority: 0 }, /non-empty string/],
      [{ id: 'y', pool: 'p', priority: NaN }, /priority must be a finite number/],
      [{ id: 'y', pool: 'p', priority: 0, slots: 3 }, /slots must be an integer from 1 to 2/],
      [{ id: 'y', pool: 'p', priority: 0, slots: 0 }, /slots must be an integer/],
      [{ id: 'y', pool: 'p', priority: 0, slots: 1.5 }, /slots must be an integer/],
    ];
    for (const [item, message] of bad) {
      const e = errorOf(() => s.submit(item));
      expect(e.code).toBe('invalid_argument');
      expect(e.message).toMatch(message);
    }
    expect(s.waiting()).toBe(1);
    expect(() => s.waiting('ghost')).toThrow(/unknown pool/);
  });

  it('reports counts per pool subtree and a snapshot', () => {
    const s = new SlotScheduler({
      capacity: 4,
      pools: [{ name: 'a', reserved: 1 }, { name: 'a1', parent: 'a', max: 3 }, { name: 'b' }],
    });
    s.submit({ id: 'x', pool: 'a1', priority: 0, slots: 3 });
    s.submit({ id: 'y', pool: 'a', priority: 1 });
    s.submit({ id: 'z', pool: 'b', priority: 2 });
    s.submit({ id: 'w', pool: 'b', priority: 3 });
    expect(ids(s.startable())).toEqual(['x', 'y']);
    expect([s.running('a'), s.running('a1'), s.running('b'), s.running()]).toEqual([2, 1, 0, 2]);
    expect([s.waiting('a'), s.waiting('b'), s.waiting()]).toEqual([0, 2, 2]);
    expect(s.snapshot()).toEqual({
      capacity: 4,
      running: 4,
      runningItems: 2,
      waiting: 2,
      pools: [
        {
          name: 'a',
          parent: undefined,
          reserved: 1,
          max: undefined,
          running: 4,
          runningItems: 2,
          waiting: 0,
          borrowed: 3,
        },
        {
          name: 'a1',
          parent: 'a',
          reserved: 0,
          max: 3,
          running: 3,
          runningItems: 1,
          waiting: 0,
          borrowed: 3,
        },
        {
          name: 'b',
          parent: undefined,
          reserved: 0,
          max: undefined,
          running: 0,
          runningItems: 0,
          waiting: 2,
          borrowed: 0,
        },
      ],
    });
  });

  it('accepts an id again once its item finished', () => {
    const s = single(1);
    s.submit({ id: 'a', pool: 'p', priority: 0 });
    s.next();
    s.finish('a');
    s.submit({ id: 'a', pool: 'p', priority: 0 });
    expect(s.next()?.id).toBe('a');
  });
});
