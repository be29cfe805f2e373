import { InvalidArgumentError } from '../../errors.js';
import { Heap } from './heap.js';
import { PoolTree } from './pool-tree.js';
import type { PoolConfig, PoolSnapshot } from './pool-tree.js';

export type { PoolConfig, PoolSnapshot } from './pool-tree.js';

export interface SchedulerConfig {
  /** The node's slots, e.g. its cores. */
  capacity: number;
  pools: PoolConfig[];
}

export interface SchedulerItem {
  /** Unique among the items waiting and running. */
  id: string;
  pool: string;
  /** Lower starts first; ties go to the earlier submission. */
  priority: number;
  /** Runs only on capacity no normal work wants; ranks after every normal item. */
  opportunistic?: boolean;
  /** Function name: the unit of `setLimit`. */
  fn?: string;
  /** Concurrency key within `fn`; only keyed items count against `perKey`. */
  key?: string;
  /** Slots taken while running, e.g. 2 for a function shaped cpu:2. Default 1. */
  slots?: number;
}

export interface FunctionLimit {
  /** Most running items of the function on this node. */
  max?: number;
  /** Most running items of the function per key. */
  perKey?: number;
}

export interface SchedulerSnapshot {
  capacity: number;
  /** Slots in use on the node. */
  running: number;
  runningItems: number;
  waiting: number;
  pools: PoolSnapshot[];
}

/**
 * Waiting items are grouped so that anything a limit blocks can be set aside as a group and brought back
 * by the one event that can unblock it, instead of being skipped item by item on every call:
 *
 *   class (pool, slots, opportunistic) ─ heap of FnLanes ─ heap of KeyLanes ─ heap of items
 *
 * A class's items all fit or all do not fit the free slots, so "blocked by capacity" is one check per
 * class. An FnLane is parked while its function is at `max`, a KeyLane while its (fn, key) is at
 * `perKey`; a finish of that function (or key), or setLimit, unparks them. Each heap is ordered by the best
 * (priority, submission) of what it holds that is not parked.
 */
interface Entry<T> {
  readonly item: T;
  readonly pool: number;
  readonly slots: number;
  readonly opportunistic: boolean;
  readonly priority: number;
  readonly seq: number;
  readonly fn: string | undefined;
  readonly key: string | undefined;
  /** Set while waiting. */
  lane: KeyLane<T> | undefined;
  /** Started by ride(): runs on its leader's slots, taking none of its own. */
  rider?: boolean;
  /** Its place in its KeyLane's heap. */
  heapIndex: number;
}

class KeyLane<T> {
  parked = false;
  heapIndex = -1;
  readonly items = new Heap<Entry<T>>(entryBefore);
  constructor(
    readonly owner: FnLane<T>,
    readonly key: string | undefined,
  ) {}
}

class FnLane<T> {
  parked = false;
  heapIndex = -1;
  /** Non-empty, unparked lanes. */
  readonly ready = new Heap<KeyLane<T>>((a, b) => entryBefore(headOf(a), headOf(b)));
  readonly lanes = new Map<string | undefined, KeyLane<T>>();
  constructor(
    readonly owner: QueueClass<T>,
    readonly fn: string | undefined,
  ) {}
}

class QueueClass<T> {
  /** Unparked FnLanes that have a ready KeyLane. */
  readonly ready = new Heap<FnLane<T>>((a, b) => entryBefore(laneHead(a), laneHead(b)));
  readonly lanes = new Map<string | undefined, FnLane<T>>();
  constructor(
    readonly name: string,
    readonly pool: number,
    readonly slots: number,
    readonly opportunistic: boolean,
  ) {}
}

function entryBefore<T>(a: Entry<T>, b: Entry<T>): boolean {
  return a.priority < b.priority || (a.priority === b.priority && a.seq < b.seq);
}
function headOf<T>(k: KeyLane<T>): Entry<T> {
  return k.items.peek() as Entry<T>;
}
function laneHead<T>(f: FnLane<T>): Entry<T> {
  return headOf(f.ready.peek() as KeyLane<T>);
}

/**
 * The node-local slot scheduler: decides which waiting invocation starts next on this node's slots. Pure
 * and synchronous; the caller runs what `next()` returns and calls `finish()` when it is done. See
 * docs/scheduling.md for the rules and a worked example.
 *
 * Cost, with P pools, C classes (pool × distinct slot sizes × normal/opportunistic, a small number) and n
 * waiting items: submit and cancel O(depth + log n); finish O(depth + L·log n), L the lanes it unparks
 * (at most two per class); next() O(P + C·log n) amortized, plus O(P) per opportunistic candidate
 * when normal work is waiting for slots. No call scans the waiting items.
 */
export class SlotScheduler<T extends SchedulerItem = SchedulerItem> {
  private readonly tree: PoolTree;
  private readonly normal = new Map<string, QueueClass<T>>();
  private readonly opportunistic = new Map<string, QueueClass<T>>();
  private readonly waitingById = new Map<string, Entry<T>>();
  private readonly runningById = new Map<string, Entry<T>>();
  private readonly limits = new Map<string, FunctionLimit>();
  private readonly runningByFn = new Map<string, number>();
  private readonly runningByKey = new Map<string, Map<string, number>>();
  private readonly parkedFns = new Map<string, Set<FnLane<T>>>();
  private readonly parkedKeys = new Map<string, Map<string, Set<KeyLane<T>>>>();
  private seq = 0;

  constructor(config: SchedulerConfig) {
    this.tree = new PoolTree(config.capacity, config.pools);
  }

  submit(item: T): void {
    const { pool, slots } = this.checked(item);
    const opportunistic = item.opportunistic === true;
    const entry = this.entryOf(item, pool, slots);
    const classes = opportunistic ? this.opportunistic : this.normal;
    const className = `${pool}/${slots}`;
    let cls = classes.get(className);
    if (cls === undefined)
      classes.set(className, (cls = new QueueClass<T>(className, pool, slots, opportunistic)));
    let fnLane = cls.lanes.get(entry.fn);
    if (fnLane === undefined) cls.lanes.set(entry.fn, (fnLane = new FnLane<T>(cls, entry.fn)));
    let lane = fnLane.lanes.get(entry.key);
    if (lane === undefined) fnLane.lanes.set(entry.key, (lane = new KeyLane<T>(fnLane, entry.key)));
    entry.lane = lane;
    lane.items.push(entry);
    this.refreshKeyLane(lane);
    this.waitingById.set(item.id, entry);
    this.tree.addWaiting(pool, !opportunistic, 1);
  }

  /**
   * Starts `item` at once if nothing waits on the node and it may start: exactly what submit() and then
   * next() would do (with nothing else waiting, next() starts it whenever it fits and its limits allow),
   * without building the lanes it would wait in. The path of every invocation on a node that keeps up.
   * Returns false, having changed nothing, when the caller must submit() it instead.
   */
  startNow(item: T): boolean {
    if (this.tree.waiting() !== 0) return false;
    const { pool, slots } = this.checked(item);
    if (
      slots > this.tree.freeWhileNothingWaits(pool) ||
      this.fnBlocked(item.fn) ||
      this.keyBlocked(item.fn, item.key)
    )
      return false;
    this.markRunning(this.entryOf(item, pool, slots));
    return true;
  }

  private entryOf(item: T, pool: number, slots: number): Entry<T> {
    return {
      item,
      pool,
      slots,
      opportunistic: item.opportunistic === true,
      priority: item.priority,
      seq: this.seq++,
      fn: item.fn,
      key: item.key,
      lane: undefined,
      heapIndex: -1,
    };
  }

  /** The item's pool id and slots, or an InvalidArgumentError saying what is wrong with it. */
  private checked(item: T): { pool: number; slots: number } {
    const pool = this.poolId(item.pool);
    const slots = item.slots ?? 1;
    if (typeof item.id !== 'string' || item.id === '')
      throw new InvalidArgumentError('item id must be a non-empty string');
    if (this.waitingById.has(item.id) || this.runningById.has(item.id))
      throw new InvalidArgumentError(`item "${item.id}" is already waiting or running`, { id: item.id });
    if (!Number.isFinite(item.priority))
      throw new InvalidArgumentError(`item "${item.id}": priority must be a finite number`, { id: item.id });
    if (!Number.isInteger(slots) || slots < 1 || slots > this.tree.bound(pool))
      throw new InvalidArgumentError(
        `item "${item.id}": slots must be an integer from 1 to ${this.tree.bound(pool)} (the most pool "${item.pool}" can run), got ${String(slots)}`,
        { id: item.id, pool: item.pool },
      );
    return { pool, slots };
  }

  /** Withdraws a waiting item; false when it is not waiting (unknown, or already running). */
  cancel(id: string): boolean {
    const entry = this.waitingById.get(id);
    if (entry === undefined) return false;
    const lane = entry.lane as KeyLane<T>;
    lane.items.remove(entry);
    this.refreshKeyLane(lane);
    this.waitingById.delete(id);
    this.tree.addWaiting(entry.pool, !entry.opportunistic, -1);
    return true;
  }

  /** Starts the best item that can start now and returns it, or undefined when none can. */
  next(): T | undefined {
    // The common answer on a node that keeps up, asked after every finish: nothing waits.
    if (this.tree.waiting() === 0) return undefined;
    const avail = this.tree.availability();
    let best: Entry<T> | undefined;
    const starved: QueueClass<T>[] = [];
    for (const cls of this.normal.values()) {
      const head = this.head(cls);
      if (head === undefined) continue;
      if (cls.slots > (avail[cls.pool] as number)) starved.push(cls);
      else if (best === undefined || entryBefore(head, best)) best = head;
    }
    if (best !== undefined) return this.start(best);

    const candidates: Entry<T>[] = [];
    for (const cls of this.opportunistic.values()) {
      const head = this.head(cls);
      if (head !== undefined && cls.slots <= (avail[cls.pool] as number)) candidates.push(head);
    }
    candidates.sort((a, b) => (entryBefore(a, b) ? -1 : 1));
    for (const c of candidates) if (!this.wantedByNormalWork(c, starved, avail)) return this.start(c);
    return undefined;
  }

  /**
   * Starts a rider of a running item: the item next() would start if the leader's slots were free, when it
   * is of the leader's class (pool, slots, kind) and `accept` takes it. A rider takes no slots (the caller
   * runs it after its leader, on the leader's worker, and frees the leader's slots only once all of them
   * are done) but counts against its function's limits like any running item. So riders start in the order
   * next() would have started them; normal work never rides behind opportunistic work, and opportunistic
   * work rides only while no normal work waits.
   */
  ride(leaderId: string, accept: (item: T) => boolean = () => true): T | undefined {
    if (this.tree.waiting() === 0) return undefined;
    const leader = this.runningById.get(leaderId);
    if (leader === undefined || leader.rider === true) return undefined;
    let best = this.bestHead(this.normal);
    if (leader.opportunistic) {
      if (best !== undefined) return undefined;
      best = this.bestHead(this.opportunistic);
    }
    if (
      best === undefined ||
      best.pool !== leader.pool ||
      best.slots !== leader.slots ||
      best.opportunistic !== leader.opportunistic ||
      !accept(best.item)
    )
      return undefined;
    best.rider = true;
    return this.start(best);
  }

  private bestHead(classes: Map<string, QueueClass<T>>): Entry<T> | undefined {
    let best: Entry<T> | undefined;
    for (const cls of classes.values()) {
      const head = this.head(cls);
      if (head !== undefined && (best === undefined || entryBefore(head, best))) best = head;
    }
    return best;
  }

  /** Calls next() until nothing more can start. */
  startable(): T[] {
    const out: T[] = [];
    for (let item = this.next(); item !== undefined; item = this.next()) out.push(item);
    return out;
  }

  /** Frees a running item's slots and returns it. */
  finish(id: string): T {
    const entry = this.runningById.get(id);
    if (entry === undefined)
      throw new InvalidArgumentError(
        this.waitingById.has(id) ? `item "${id}" is waiting, not running` : `no running item "${id}"`,
        { id },
      );
    this.runningById.delete(id);
    this.tree.addRunning(entry.pool, entry.rider === true ? 0 : entry.slots, !entry.opportunistic, -1);
    const { fn, key } = entry;
    if (fn !== undefined) {
      this.runningByFn.set(fn, (this.runningByFn.get(fn) ?? 1) - 1);
      if (!this.fnBlocked(fn)) this.unparkFn(fn);
      if (key !== undefined) {
        const keys = this.runningByKey.get(fn) as Map<string, number>;
        const n = (keys.get(key) ?? 1) - 1;
        if (n === 0) keys.delete(key);
        else keys.set(key, n);
        if (!this.keyBlocked(fn, key)) this.unparkKeys(fn, key);
      }
    }
    return entry.item;
  }

  /** Replaces the limits of `fn` (`{}` removes them). Lowering a limit never stops running items. */
  setLimit(fn: string, limit: FunctionLimit): void {
    for (const field of ['max', 'perKey'] as const) {
      const v = limit[field];
      if (v !== undefined && !(Number.isInteger(v) && v >= 1))
        throw new InvalidArgumentError(
          `setLimit("${fn}"): ${field} must be a positive integer, got ${String(v)}`,
        );
    }
    if (limit.max === undefined && limit.perKey === undefined) this.limits.delete(fn);
    else this.limits.set(fn, { ...limit });
    // Unpark everything of fn and let next() park again what is still blocked: simpler than diffing.
    this.unparkFn(fn);
    this.unparkKeys(fn);
  }

  /** Items waiting in `pool` and its descendants (default: the whole node). */
  waiting(pool?: string): number {
    return this.tree.waiting(pool === undefined ? undefined : this.poolId(pool));
  }

  /** Items running in `pool` and its descendants (default: the whole node). */
  running(pool?: string): number {
    return this.tree.running(pool === undefined ? undefined : this.poolId(pool)).items;
  }

  snapshot(): SchedulerSnapshot {
    const { slots, items } = this.tree.running();
    return {
      capacity: this.tree.capacity,
      running: slots,
      runningItems: items,
      waiting: this.tree.waiting(),
      pools: this.tree.snapshot(),
    };
  }

  private poolId(name: string): number {
    const id = typeof name === 'string' ? this.tree.id(name) : undefined;
    if (id === undefined) throw new InvalidArgumentError(`unknown pool "${String(name)}"`, { pool: name });
    return id;
  }

  private fnBlocked(fn: string | undefined): boolean {
    if (fn === undefined) return false;
    const max = this.limits.get(fn)?.max;
    return max !== undefined && (this.runningByFn.get(fn) ?? 0) >= max;
  }

  private keyBlocked(fn: string | undefined, key: string | undefined): boolean {
    if (fn === undefined || key === undefined) return false;
    const perKey = this.limits.get(fn)?.perKey;
    return perKey !== undefined && (this.runningByKey.get(fn)?.get(key) ?? 0) >= perKey;
  }

  /** The class's best item whose limits allow it to start, parking the lanes found blocked on the way. */
  private head(cls: QueueClass<T>): Entry<T> | undefined {
    for (;;) {
      const fnLane = cls.ready.peek();
      if (fnLane === undefined) return undefined;
      if (this.fnBlocked(fnLane.fn)) {
        cls.ready.pop();
        fnLane.parked = true;
        const fn = fnLane.fn as string;
        setOf(this.parkedFns, fn).add(fnLane);
        continue;
      }
      const lane = fnLane.ready.peek() as KeyLane<T>;
      if (this.keyBlocked(fnLane.fn, lane.key)) {
        fnLane.ready.pop();
        lane.parked = true;
        const byKey = this.parkedKeys.get(fnLane.fn as string) ?? new Map<string, Set<KeyLane<T>>>();
        this.parkedKeys.set(fnLane.fn as string, byKey);
        setOf(byKey, lane.key as string).add(lane);
        this.refreshFnLane(fnLane);
        continue;
      }
      return headOf(lane);
    }
  }

  /**
   * An opportunistic candidate that fits must still leave alone the slots that waiting normal work needs:
   * if starting it would shrink what any starved normal class (one with an unblocked item too big for the
   * free slots) can take, that normal item would wait longer, so the candidate yields. Without this, a
   * stream of 1-slot opportunistic items could starve a 2-slot normal item forever.
   */
  private wantedByNormalWork(c: Entry<T>, starved: QueueClass<T>[], avail: number[]): boolean {
    if (starved.length === 0) return false;
    const after = this.tree.availabilityIf(c.pool, c.slots);
    return starved.some((cls) => (after[cls.pool] as number) < (avail[cls.pool] as number));
  }

  private start(entry: Entry<T>): T {
    const lane = entry.lane as KeyLane<T>;
    lane.items.remove(entry);
    this.refreshKeyLane(lane);
    entry.lane = undefined;
    this.waitingById.delete(entry.item.id);
    this.tree.addWaiting(entry.pool, !entry.opportunistic, -1);
    return this.markRunning(entry);
  }

  private markRunning(entry: Entry<T>): T {
    this.runningById.set(entry.item.id, entry);
    this.tree.addRunning(entry.pool, entry.rider === true ? 0 : entry.slots, !entry.opportunistic, 1);
    const { fn, key } = entry;
    if (fn !== undefined) {
      this.runningByFn.set(fn, (this.runningByFn.get(fn) ?? 0) + 1);
      if (key !== undefined) {
        const keys = this.runningByKey.get(fn) ?? new Map<string, number>();
        this.runningByKey.set(fn, keys);
        keys.set(key, (keys.get(key) ?? 0) + 1);
      }
    }
    return entry.item;
  }

  private unparkFn(fn: string): void {
    const lanes = this.parkedFns.get(fn);
    if (lanes === undefined) return;
    this.parkedFns.delete(fn);
    for (const fnLane of lanes) {
      fnLane.parked = false;
      this.refreshFnLane(fnLane);
    }
  }

  /** Unparks the KeyLanes of one key of `fn`, or of all its keys. */
  private unparkKeys(fn: string, key?: string): void {
    const byKey = this.parkedKeys.get(fn);
    if (byKey === undefined) return;
    const sets = key === undefined ? [...byKey.values()] : [byKey.get(key)];
    if (key === undefined) this.parkedKeys.delete(fn);
    else byKey.delete(key);
    for (const lanes of sets)
      for (const lane of lanes ?? []) {
        lane.parked = false;
        this.refreshKeyLane(lane);
      }
  }

  /**
   * Puts a KeyLane where it belongs after its items or parked flag changed, then its FnLane. An emptied lane
   * of a key is dropped (keys are often unique ids); the unkeyed lane stays, and with it its FnLane and
   * class: there are only as many as functions and classes, and making them anew on every submit to an
   * idle node was a measurable share of a warm dispatch.
   */
  private refreshKeyLane(lane: KeyLane<T>): void {
    const fnLane = lane.owner;
    if (lane.items.size === 0 && lane.key === undefined) {
      if (fnLane.ready.has(lane)) fnLane.ready.remove(lane);
    } else if (lane.items.size === 0) {
      if (lane.parked) {
        const byKey = this.parkedKeys.get(fnLane.fn as string) as Map<string, Set<KeyLane<T>>>;
        deleteFromSet(byKey, lane.key as string, lane);
        if (byKey.size === 0) this.parkedKeys.delete(fnLane.fn as string);
      } else fnLane.ready.remove(lane);
      fnLane.lanes.delete(lane.key);
    } else if (!lane.parked) {
      if (fnLane.ready.has(lane)) fnLane.ready.update(lane);
      else fnLane.ready.push(lane);
    } else return;
    this.refreshFnLane(fnLane);
  }

  /** Puts an FnLane where it belongs after its ready lanes or parked flag changed; drops empty classes. */
  private refreshFnLane(fnLane: FnLane<T>): void {
    const cls = fnLane.owner;
    if (fnLane.lanes.size === 0) {
      if (fnLane.parked) deleteFromSet(this.parkedFns, fnLane.fn as string, fnLane);
      else cls.ready.remove(fnLane);
      cls.lanes.delete(fnLane.fn);
      if (cls.lanes.size === 0) (cls.opportunistic ? this.opportunistic : this.normal).delete(cls.name);
    } else if (fnLane.parked) {
      return;
    } else if (fnLane.ready.size === 0) {
      cls.ready.remove(fnLane);
    } else if (cls.ready.has(fnLane)) {
      cls.ready.update(fnLane);
    } else {
      cls.ready.push(fnLane);
    }
  }
}

function setOf<K, V>(map: Map<K, Set<V>>, key: K): Set<V> {
  let set = map.get(key);
  if (set === undefined) map.set(key, (set = new Set<V>()));
  return set;
}

/** Keeps parked maps free of empty sets: keys are often unique ids, so empty sets would pile up. */
function deleteFromSet<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key);
  set?.delete(value);
  if (set?.size === 0) map.delete(key);
}
