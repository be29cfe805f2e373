import { describe, expect, it } from 'vitest';
import { SlotScheduler } from './slot-scheduler.js';
import type { FunctionLimit, PoolConfig, SchedulerConfig, SchedulerItem } from './slot-scheduler.js';

/**
 * Random submit / finish / cancel / setLimit / next over a nested config, checked after every step against
 * a brute-force model that recomputes everything from plain lists: capacity, priority, opportunistic and
 * reservation invariants, and the exact choice of next(). The model shares no code with the scheduler, so
 * a stale heap, a lane left parked or a wrong counter shows up as a disagreement.
 */

const config: SchedulerConfig = {
  capacity: 8,
  pools: [
    { name: 'media', reserved: 4, max: 6 },
    { name: 'thumbs', parent: 'media', reserved: 2 },
    { name: 'encode', parent: 'media', max: 4 },
    { name: 'batch', reserved: 2 },
    { name: 'nightly', parent: 'batch', reserved: 1 },
    { name: 'scratch', max: 3 },
  ],
};
const POOLS = config.pools.map((p) => p.name);
const FNS = [undefined, 'a', 'b', 'c'];
const KEYS = [undefined, 'k1', 'k2', 'k3'];

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

interface Live {
  item: SchedulerItem;
  seq: number;
  slots: number;
  opp: boolean;
}

class Model {
  readonly waiting: Live[] = [];
  readonly running: Live[] = [];
  readonly limits = new Map<string, FunctionLimit>();
  private readonly byName = new Map<string, PoolConfig>(config.pools.map((p) => [p.name, p]));

  /** `pool` and its ancestors, nearest first. */
  chain(pool: string): string[] {
    const out: string[] = [];
    for (let p: string | undefined = pool; p !== undefined; p = this.byName.get(p)?.parent) out.push(p);
    return out;
  }
  inSubtree(pool: string, root: string): boolean {
    return this.chain(pool).includes(root);
  }
  children(parent: string | undefined): string[] {
    return POOLS.filter((p) => this.byName.get(p)?.parent === parent);
  }
  /** Slots running in the subtree of `pool` (undefined: the node), optionally over extra hypothetical items. */
  used(pool: string | undefined, running: Live[] = this.running, normalOnly = false): number {
    return running
      .filter((l) => (pool === undefined || this.inSubtree(l.item.pool, pool)) && !(normalOnly && l.opp))
      .reduce((n, l) => n + l.slots, 0);
  }
  bound(pool: string | undefined): number {
    return pool === undefined ? config.capacity : (this.byName.get(pool)?.max ?? Infinity);
  }
  /** The most `pool` could ever run. */
  poolBound(pool: string): number {
    return Math.min(config.capacity, ...this.chain(pool).map((p) => this.bound(p)));
  }
  normalWaiting(pool: string): boolean {
    return this.waiting.some((l) => !l.opp && this.inSubtree(l.item.pool, pool));
  }
  reserved(pool: string): number {
    return this.byName.get(pool)?.reserved ?? 0;
  }
  held(pool: string, running: Live[]): number {
    if (!this.normalWaiting(pool)) return 0;
    return Math.max(0, this.reserved(pool) - this.used(pool, running, true));
  }
  /** What the subtree of `pool` may take: its own room, and its parent's minus what its siblings hold. */
  subtreeAvail(pool: string | undefined, running: Live[]): number {
    if (pool === undefined) return config.capacity - this.used(undefined, running);
    const parent = this.byName.get(pool)?.parent;
    const siblingsHeld = this.children(parent)
      .filter((s) => s !== pool)
      .reduce((n, s) => n + this.held(s, running), 0);
    return Math.min(
      this.bound(pool) - this.used(pool, running),
      this.subtreeAvail(parent, running) - siblingsHeld,
    );
  }
  directAvail(pool: string, running: Live[] = this.running): number {
    const childrenHeld = this.children(pool).reduce((n, c) => n + this.held(c, running), 0);
    return this.subtreeAvail(pool, running) - childrenHeld;
  }
  limitsOk(item: SchedulerItem): boolean {
    if (item.fn === undefined) return true;
    const limit = this.limits.get(item.fn) ?? {};
    const sameFn = this.running.filter((l) => l.item.fn === item.fn);
    if (limit.max !== undefined && sameFn.length >= limit.max) return false;
    if (item.key === undefined || limit.perKey === undefined) return true;
    return sameFn.filter((l) => l.item.key === item.key).length < limit.perKey;
  }
  startable(l: Live): boolean {
    return this.limitsOk(l.item) && l.slots <= this.directAvail(l.item.pool);
  }
  /** Physical room for `pool`: the tightest max − used along its chain, the node included. */
  room(pool: string): number {
    const levels: (string | undefined)[] = [...this.chain(pool), undefined];
    return Math.min(...levels.map((p) => this.bound(p) - this.used(p)));
  }
  expected(): Live | undefined {
    const normal = this.waiting.filter((l) => !l.opp && this.startable(l)).sort(better);
    if (normal[0] !== undefined) return normal[0];
    const starved = this.waiting.filter((l) => !l.opp && this.limitsOk(l.item) && !this.startable(l));
    return this.waiting
      .filter((l) => l.opp && this.startable(l))
      .sort(better)
      .find((o) => {
        const after = [...this.running, o];
        return starved.every((y) => this.directAvail(y.item.pool, after) >= this.directAvail(y.item.pool));
      });
  }
}

function better(a: Live, b: Live): number {
  return a.item.priority - b.item.priority || a.seq - b.seq;
}

interface Coverage {
  starts: number;
  opportunisticStarts: number;
  /** A fitting opportunistic item was passed over for a normal (or better-placed) one. */
  opportunisticPassed: number;
  /** A fitting opportunistic item stayed waiting because a starved normal item needed its slots. */
  opportunisticYielded: number;
  limitBlockedSkipped: number;
  reservationChecks: number;
  borrowed: number;
  /** Items startNow() started, with nothing else waiting. */
  startedNow: number;
  /** Items startNow() refused while nothing else waited (no room, or a limit). */
  refusedNow: number;
}

function run(seed: number, steps: number): Coverage {
  const rand = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const s = new SlotScheduler(config);
  const m = new Model();
  const cov: Coverage = {
    starts: 0,
    opportunisticStarts: 0,
    opportunisticPassed: 0,
    opportunisticYielded: 0,
    limitBlockedSkipped: 0,
    reservationChecks: 0,
    startedNow: 0,
    refusedNow: 0,
    borrowed: 0,
  };
  const setLimit = (fn: string, limit: FunctionLimit): void => {
    s.setLimit(fn, limit);
    if (limit.max === undefined && limit.perKey === undefined) m.limits.delete(fn);
    else m.limits.set(fn, limit);
  };
  setLimit('a', { max: 3, perKey: 1 });
  setLimit('b', { perKey: 2 });
  setLimit('c', { max: 2 });
  let seq = 0;

  const checkedNext = (): boolean => {
    const expected = m.expected();
    const startableNormal = m.waiting.filter((l) => !l.opp && m.startable(l));
    // Reservations short with normal work waiting, and the room each had before this step.
    const short = POOLS.filter((p) => m.reserved(p) > 0 && m.normalWaiting(p)).map((p) => ({
      pool: p,
      short: m.reserved(p) - m.used(p, m.running, true),
      room: m.room(p),
    }));
    const got = s.next();

    expect(got?.id).toBe(expected?.item.id);
    if (got === undefined) {
      expect(startableNormal).toEqual([]);
      if (m.waiting.some((l) => l.opp && m.startable(l))) cov.opportunisticYielded++;
      return false;
    }
    const live = m.waiting.find((l) => l.item === got) as Live;
    // It could start: its limits allowed it and it fit.
    expect(m.startable(live)).toBe(true);
    // No better startable normal item was passed over; opportunistic work only when no normal item could start.
    if (live.opp) expect(startableNormal).toEqual([]);
    else for (const y of startableNormal) if (y !== live) expect(better(live, y)).toBeLessThan(0);
    if (m.waiting.some((l) => !l.opp && !m.limitsOk(l.item) && better(l, live) < 0))
      cov.limitBlockedSkipped++;
    if (m.waiting.some((l) => l.opp && l !== live && m.startable(l) && (!live.opp || better(l, live) < 0)))
      cov.opportunisticPassed++;

    m.waiting.splice(m.waiting.indexOf(live), 1);
    m.running.push(live);
    cov.starts++;
    if (live.opp) cov.opportunisticStarts++;

    // Reservations: a start outside a short pool A, on a branch that meets A's at A's parent, must leave A
    // the room it is short of (or all the room it had, if that was less).
    for (const r of short.filter((x) => x.short > 0)) {
      const parent = config.pools.find((p) => p.name === r.pool)?.parent;
      const branchesAtParent = parent === undefined || m.inSubtree(got.pool, parent);
      if (m.inSubtree(got.pool, r.pool) || !branchesAtParent) continue;
      cov.reservationChecks++;
      expect(m.room(r.pool)).toBeGreaterThanOrEqual(Math.min(r.short, r.room));
    }
    checkCapacity();
    return true;
  };

  const checkCapacity = (): void => {
    expect(m.used(undefined)).toBeLessThanOrEqual(config.capacity);
    for (const p of [...POOLS, undefined]) {
      // Children plus the items placed directly in p never exceed what p (or the node) allows.
      const direct = m.running.filter((l) => l.item.pool === p).reduce((n, l) => n + l.slots, 0);
      const kids = m.children(p).reduce((n, c) => n + m.used(c), 0);
      expect(kids + direct).toBeLessThanOrEqual(Math.min(m.bound(p), config.capacity));
    }
    const snap = s.snapshot();
    expect(snap.running).toBe(m.used(undefined));
    expect(snap.waiting).toBe(m.waiting.length);
    for (const p of snap.pools) {
      expect(p.running).toBe(m.used(p.name));
      expect(p.waiting).toBe(m.waiting.filter((l) => m.inSubtree(l.item.pool, p.name)).length);
      if (p.borrowed > 0) cov.borrowed++;
    }
  };

  for (let step = 0; step < steps; step++) {
    // Busy and quiet phases alternate, so the node is sometimes saturated (reservations, limits and
    // priorities matter) and sometimes idle (opportunistic work gets its chances).
    const busy = Math.floor(step / 250) % 2 === 0;
    const r = rand() < (busy ? 0.45 : 0.12) ? 0 : 0.4 + rand() * 0.6;
    if (r < 0.4 && m.waiting.length < 60) {
      const pool = pick(POOLS);
      const fn = pick(FNS);
      const key = fn === undefined ? undefined : pick(KEYS);
      const item: SchedulerItem = {
        id: `i${seq}`,
        pool,
        priority: Math.floor(rand() * 10),
        slots: Math.min(pick([1, 1, 1, 1, 2, 2, 3]), m.poolBound(pool)),
        ...(rand() < 0.2 && { opportunistic: true }),
        ...(fn !== undefined && { fn }),
        ...(key !== undefined && { key }),
      };
      const live: Live = { item, seq: seq++, slots: item.slots ?? 1, opp: item.opportunistic === true };
      m.waiting.push(live);
      // startNow must start exactly what submit() then next() would: the item, when it is all that waits
      // and it may start; otherwise nothing, and the item is submitted as usual.
      if (rand() < 0.5) {
        const expected = m.waiting.length === 1 ? m.expected() : undefined;
        const started = s.startNow(item);
        expect(started).toBe(expected?.item === item);
        if (!started && m.waiting.length === 1) cov.refusedNow++;
        if (started) {
          m.waiting.pop();
          m.running.push(live);
          cov.startedNow++;
        } else s.submit(item);
      } else s.submit(item);
    } else if (r < 0.62 && m.running.length > 0) {
      const l = pick(m.running);
      expect(s.finish(l.item.id)).toBe(l.item);
      m.running.splice(m.running.indexOf(l), 1);
    } else if (r < 0.68 && m.waiting.length > 0) {
      const l = pick(m.waiting);
      expect(s.cancel(l.item.id)).toBe(true);
      m.waiting.splice(m.waiting.indexOf(l), 1);
    } else if (r < 0.7) {
      if (m.running.length > 0) expect(s.cancel(pick(m.running).item.id)).toBe(false);
      expect(s.cancel('never-submitted')).toBe(false);
    } else if (r < 0.72) {
      const limit: FunctionLimit = {};
      if (rand() < 0.6) limit.max = 1 + Math.floor(rand() * 4);
      if (rand() < 0.6) limit.perKey = 1 + Math.floor(rand() * 3);
      setLimit(pick(['a', 'b', 'c']), limit);
    } else if (r < 0.8) {
      while (checkedNext());
    } else {
      checkedNext();
    }
    checkCapacity();
  }
  return cov;
}

describe('SlotScheduler: randomized against a brute-force model', () => {
  for (const seed of [1, 2, 3]) {
    it(`holds every invariant over 4,000 random steps (seed ${seed})`, () => {
      const cov = run(seed, 4_000);
      // The run must have exercised each situation the invariants are about.
      expect(cov.starts).toBeGreaterThan(500);
      expect(cov.opportunisticStarts).toBeGreaterThan(30);
      expect(cov.opportunisticPassed).toBeGreaterThan(100);
      expect(cov.opportunisticYielded).toBeGreaterThan(50);
      expect(cov.limitBlockedSkipped).toBeGreaterThan(50);
      expect(cov.reservationChecks).toBeGreaterThan(100);
      expect(cov.borrowed).toBeGreaterThan(1_000);
      expect(cov.startedNow).toBeGreaterThan(30);
      expect(cov.refusedNow).toBeGreaterThan(0);
    });
  }
});
