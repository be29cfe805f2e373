import { describe, expect, it } from 'vitest';
import { SlotScheduler } from './slot-scheduler.js';
import type { PoolSnapshot, SchedulerConfig, SchedulerItem } from './slot-scheduler.js';

const ids = (items: SchedulerItem[]): string[] => items.map((i) => i.id);
const range = (prefix: string, n: number, from = 1): string[] =>
  Array.from({ length: n }, (_, i) => `${prefix}${i + from}`);

function submitAll(s: SlotScheduler, pool: string, priority: number, names: string[]): void {
  for (const id of names) s.submit({ id, pool, priority });
}

function pool(s: SlotScheduler, name: string): PoolSnapshot {
  const p = s.snapshot().pools.find((x) => x.name === name);
  if (p === undefined) throw new Error(`no pool ${name}`);
  return p;
}

/** Capacity invariants, from the snapshot alone. */
function checkCapacity(s: SlotScheduler, config: SchedulerConfig): void {
  const snap = s.snapshot();
  expect(snap.running).toBeLessThanOrEqual(config.capacity);
  const top = snap.pools.filter((p) => p.parent === undefined).reduce((n, p) => n + p.running, 0);
  expect(top).toBeLessThanOrEqual(snap.running);
  for (const p of snap.pools) {
    if (p.max !== undefined) expect(p.running).toBeLessThanOrEqual(p.max);
    const kids = snap.pools.filter((c) => c.parent === p.name).reduce((n, c) => n + c.running, 0);
    expect(kids).toBeLessThanOrEqual(p.running);
  }
}

describe('reservations between sibling pools (capacity 4, A reserved 2, B reserved 0)', () => {
  const config: SchedulerConfig = { capacity: 4, pools: [{ name: 'A', reserved: 2 }, { name: 'B' }] };

  it('(a) with A queued first, B never runs more than 2, whatever the priorities', () => {
    const s = new SlotScheduler(config);
    submitAll(s, 'A', 5, range('a', 8));
    submitAll(s, 'B', 1, range('b', 8));
    // B's better priority takes the two unreserved slots, then A's held 2 go to A.
    expect(ids(s.startable())).toEqual(['b1', 'b2', 'a1', 'a2']);
    const running = { A: ['a1', 'a2'], B: ['b1', 'b2'] };
    for (let step = 0; step < 10; step++) {
      // A slot freed by B goes back to B (A holds exactly its reservation); one freed by A returns to A.
      const from = step % 2 === 0 ? 'B' : 'A';
      s.finish(running[from].shift() as string);
      const started = s.startable();
      expect(started.map((i) => i.pool)).toEqual([from]);
      running[from].push(...ids(started));
      expect(s.running('B')).toBeLessThanOrEqual(2);
      expect(s.waiting('A')).toBeGreaterThan(0);
      checkCapacity(s, config);
    }
  });

  it('(b) with A idle, B borrows all 4; once A has work, every freed slot goes to A until it runs 2', () => {
    const s = new SlotScheduler(config);
    submitAll(s, 'B', 0, range('b', 8));
    expect(ids(s.startable())).toEqual(['b1', 'b2', 'b3', 'b4']);
    expect(pool(s, 'B').borrowed).toBe(4);
    submitAll(s, 'A', 9, range('a', 3));
    expect(s.next()).toBeUndefined(); // no preemption
    s.finish('b1');
    expect(ids(s.startable())).toEqual(['a1']); // B's waiting b5 has the better priority and still loses
    s.finish('b2');
    expect(ids(s.startable())).toEqual(['a2']);
    // A now runs its reservation: the next turnover is decided by priority again.
    s.finish('b3');
    expect(ids(s.startable())).toEqual(['b5']);
    expect([s.running('A'), s.running('B')]).toEqual([2, 2]);
    checkCapacity(s, config);
  });

  it('(b) holds the slot even when the freed slot alone is not enough for A', () => {
    const s = new SlotScheduler(config);
    submitAll(s, 'B', 0, range('b', 8));
    s.startable();
    s.submit({ id: 'a-big', pool: 'A', priority: 9, slots: 2 });
    s.finish('b1');
    expect(s.next()).toBeUndefined();
    s.finish('b2');
    expect(ids(s.startable())).toEqual(['a-big']);
  });

  it('lends an idle reservation again as soon as A has nothing waiting', () => {
    const s = new SlotScheduler(config);
    submitAll(s, 'A', 0, ['a1']);
    submitAll(s, 'B', 0, range('b', 6));
    expect(ids(s.startable())).toEqual(['a1', 'b1', 'b2', 'b3']);
    s.finish('a1');
    expect(ids(s.startable())).toEqual(['b4']);
    expect(pool(s, 'B').running).toBe(4);
  });
});

describe('nested pools: root 8 → media (reserved 4) → {thumbs (reserved 2), encode}; batch', () => {
  const config: SchedulerConfig = {
    capacity: 8,
    pools: [
      { name: 'media', reserved: 4 },
      { name: 'thumbs', parent: 'media', reserved: 2 },
      { name: 'encode', parent: 'media' },
      { name: 'batch' },
    ],
  };

  it('children borrow the idle slots of their parent and of the node', () => {
    const s = new SlotScheduler(config);
    submitAll(s, 'encode', 0, range('e', 8));
    expect(s.startable()).toHaveLength(8);
    expect(pool(s, 'encode')).toMatchObject({ running: 8, borrowed: 8 });
    expect(pool(s, 'media')).toMatchObject({ running: 8, borrowed: 4 });
    checkCapacity(s, config);
  });

  it('turnovers restore media to its reservation first, and thumbs to its own within media', () => {
    const s = new SlotScheduler(config);
    submitAll(s, 'encode', 0, range('e', 8));
    s.startable();
    submitAll(s, 'batch', 0, range('bt', 6));
    submitAll(s, 'thumbs', 5, range('t', 3));
    submitAll(s, 'encode', -1, range('e', 2, 9));
    const order: string[] = [];
    for (const id of range('e', 10)) {
      s.finish(id);
      order.push(...ids(s.startable()));
      checkCapacity(s, config);
      // While media has work waiting, batch must not grow past 8 − media's 4.
      if (s.waiting('media') > 0) expect(s.running('batch')).toBeLessThanOrEqual(4);
    }
    expect(order).toEqual([
      // media runs 7..5 > its 4 reserved: the surplus is fair game and batch's priority wins it.
      'bt1',
      'bt2',
      'bt3',
      'bt4',
      // media is back at 4; from now on its freed slots stay in media. thumbs is short: encode's better
      // priority does not help it while thumbs waits below its reservation.
      't1',
      't2',
      // thumbs has its 2: inside media, priority decides again.
      'e9',
      'e10',
      't3',
      // media has nothing waiting: its idle reservation is lent to batch.
      'bt5',
    ]);
    expect(pool(s, 'thumbs')).toMatchObject({ running: 3, borrowed: 1 });
  });

  it('items placed directly in a parent give way to a short child reservation', () => {
    const s = new SlotScheduler(config);
    submitAll(s, 'batch', 0, range('bt', 6));
    s.startable();
    submitAll(s, 'media', 0, ['m1', 'm2']);
    submitAll(s, 'thumbs', 9, ['t1']);
    // 2 free slots: thumbs holds 2 against media's own items, so t1 goes first despite its priority.
    expect(ids(s.startable())).toEqual(['t1', 'm1']);
  });
});
