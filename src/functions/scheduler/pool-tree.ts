import { CosmosError } from '../../errors.js';

/** One pool of a node's slots. */
export interface PoolConfig {
  name: string;
  /** Default: the root, i.e. the node itself. */
  parent?: string;
  /** Slots held for this pool while it has queued work; carved from the parent's reservation. Default 0. */
  reserved?: number;
  /** Cap on the slots this pool and its descendants run at once. Default: only the parent's bound. */
  max?: number;
}

export interface PoolSnapshot {
  name: string;
  /** undefined for a pool directly under the node. */
  parent: string | undefined;
  reserved: number;
  /** undefined when the pool has no cap of its own. */
  max: number | undefined;
  /** Slots in use by this pool and its descendants (opportunistic items included). */
  running: number;
  runningItems: number;
  /** Items waiting in this pool and its descendants. */
  waiting: number;
  /** Slots in use beyond the pool's reservation: taken from shared or lent capacity. */
  borrowed: number;
}

const ROOT = 0;

/**
 * The pool hierarchy of one node and its capacity accounting. Pools are numbered so that every parent comes
 * before its children (the root, the node itself, is 0): one forward pass then computes, for every pool,
 * how many slots it may take right now. All counters are per subtree, kept up to date in O(depth).
 */
export class PoolTree {
  readonly capacity: number;
  private readonly names: string[] = [''];
  private readonly ids = new Map<string, number>();
  private readonly parents: number[] = [-1];
  private readonly children: number[][] = [[]];
  private readonly maxes: number[];
  private readonly reserved: number[] = [0];
  /** min(own max, parent's bound): the most this pool could ever run. */
  private readonly bounds: number[];
  private readonly used: number[] = [0];
  private readonly normalUsed: number[] = [0];
  private readonly runningItems: number[] = [0];
  private readonly waitingItems: number[] = [0];
  private readonly normalWaiting: number[] = [0];

  constructor(capacity: number, pools: readonly PoolConfig[]) {
    if (!Number.isInteger(capacity) || capacity < 1)
      invalid(`capacity must be a positive integer (the node's slots), got ${String(capacity)}`);
    this.capacity = capacity;
    this.maxes = [capacity];
    this.bounds = [capacity];
    for (const p of ordered(pools)) {
      const id = this.names.length;
      const parent = p.parent === undefined ? ROOT : (this.ids.get(p.parent) as number);
      const max = p.max ?? Infinity;
      const bound = Math.min(max, this.bounds[parent] as number);
      const reserved = p.reserved ?? 0;
      if (reserved > bound)
        invalid(
          `pool "${p.name}" reserves ${reserved} slots but can never run more than ${bound} ` +
            `(its max, its ancestors' max or the node's capacity)`,
          p.name,
        );
      this.names.push(p.name);
      this.ids.set(p.name, id);
      this.parents.push(parent);
      this.children.push([]);
      (this.children[parent] as number[]).push(id);
      this.maxes.push(max);
      this.reserved.push(reserved);
      this.bounds.push(bound);
      for (const counter of [
        this.used,
        this.normalUsed,
        this.runningItems,
        this.waitingItems,
        this.normalWaiting,
      ])
        counter.push(0);
    }
    for (let id = 0; id < this.names.length; id++) this.checkChildReservations(id);
  }

  get size(): number {
    return this.names.length;
  }

  /** The pool's number, or undefined for an unknown name. */
  id(name: string): number | undefined {
    return this.ids.get(name);
  }

  name(id: number): string {
    return this.names[id] as string;
  }

  /** The most slots the pool could ever run: an item larger than this could never start. */
  bound(id: number): number {
    return this.bounds[id] as number;
  }

  running(id: number = ROOT): { slots: number; items: number } {
    return { slots: this.used[id] as number, items: this.runningItems[id] as number };
  }

  waiting(id: number = ROOT): number {
    return this.waitingItems[id] as number;
  }

  addWaiting(id: number, normal: boolean, delta: 1 | -1): void {
    for (let p = id; p !== -1; p = this.parents[p] as number) {
      add(this.waitingItems, p, delta);
      if (normal) add(this.normalWaiting, p, delta);
    }
  }

  addRunning(id: number, slots: number, normal: boolean, delta: 1 | -1): void {
    for (let p = id; p !== -1; p = this.parents[p] as number) {
      add(this.used, p, delta * slots);
      add(this.runningItems, p, delta);
      if (normal) add(this.normalUsed, p, delta * slots);
    }
  }

  /**
   * For every pool, the slots an item placed directly in it may take now (may be negative when others
   * hold more than is free). A pool's subtree gets min(its max − its use, what its parent's subtree gets −
   * what its siblings hold back); items placed directly in a pool also give way to what its children hold.
   * O(pools).
   */
  availability(): number[] {
    const n = this.names.length;
    const subtree = new Array<number>(n);
    const direct = new Array<number>(n);
    subtree[ROOT] = this.capacity - (this.used[ROOT] as number);
    for (let id = 0; id < n; id++) {
      const kids = this.children[id] as number[];
      let held = 0;
      for (const c of kids) held += this.held(c);
      direct[id] = (subtree[id] as number) - held;
      for (const c of kids)
        subtree[c] = Math.min(
          (this.maxes[c] as number) - (this.used[c] as number),
          (subtree[id] as number) - (held - this.held(c)),
        );
    }
    return direct;
  }

  /**
   * What availability() says of pool `id` while nothing waits anywhere on the node: no reservation is held
   * then, so it is the least room left on the way up to the root. O(depth) and allocates nothing, where
   * availability() is O(pools) and builds two arrays.
   */
  freeWhileNothingWaits(id: number): number {
    let free = Infinity;
    for (let p = id; p !== -1; p = this.parents[p] as number)
      free = Math.min(free, (this.maxes[p] as number) - (this.used[p] as number));
    return free;
  }

  /**
   * availability() as it would be with `slots` more running in pool `id` as opportunistic work (which holds
   * no reservation): lets the scheduler ask whether an opportunistic start would take anything from
   * waiting normal work.
   */
  availabilityIf(id: number, slots: number): number[] {
    for (let p = id; p !== -1; p = this.parents[p] as number) add(this.used, p, slots);
    try {
      return this.availability();
    } finally {
      for (let p = id; p !== -1; p = this.parents[p] as number) add(this.used, p, -slots);
    }
  }

  snapshot(): PoolSnapshot[] {
    const out: PoolSnapshot[] = [];
    for (let id = 1; id < this.names.length; id++) {
      const parent = this.parents[id] as number;
      const max = this.maxes[id] as number;
      const used = this.used[id] as number;
      const reserved = this.reserved[id] as number;
      out.push({
        name: this.names[id] as string,
        parent: parent === ROOT ? undefined : this.names[parent],
        reserved,
        max: max === Infinity ? undefined : max,
        running: used,
        runningItems: this.runningItems[id] as number,
        waiting: this.waitingItems[id] as number,
        borrowed: Math.max(0, used - reserved),
      });
    }
    return out;
  }

  /**
   * The part of a pool's reservation it is not using, held back from its siblings only while normal work
   * waits in its subtree (otherwise lent). Opportunistic work neither triggers nor fills a reservation:
   * it must not stand in for the normal work the reservation is for.
   */
  private held(id: number): number {
    if ((this.normalWaiting[id] as number) === 0) return 0;
    return Math.max(0, (this.reserved[id] as number) - (this.normalUsed[id] as number));
  }

  private checkChildReservations(id: number): void {
    const kids = this.children[id] as number[];
    const sum = kids.reduce((s, c) => s + (this.reserved[c] as number), 0);
    if (sum === 0) return;
    const list = kids
      .filter((c) => (this.reserved[c] as number) > 0)
      .map((c) => `"${this.names[c]}" ${this.reserved[c]}`)
      .join(', ');
    if (id === ROOT) {
      if (sum > this.capacity)
        invalid(
          `top-level pools reserve ${sum} slots (${list}), more than the node's capacity of ${this.capacity}`,
        );
      return;
    }
    const name = this.names[id] as string;
    const own = this.reserved[id] as number;
    // A child's reservation is carved from its parent's; with none of its own, the parent's bound limits it.
    if (own > 0 && sum > own)
      invalid(
        `children of pool "${name}" reserve ${sum} slots (${list}), more than "${name}" reserves (${own})`,
        name,
      );
    if (own === 0 && sum > (this.bounds[id] as number))
      invalid(
        `children of pool "${name}" reserve ${sum} slots (${list}), more than "${name}" can run (${this.bounds[id]})`,
        name,
      );
  }
}

function add(counter: number[], id: number, delta: number): void {
  counter[id] = (counter[id] as number) + delta;
}

function invalid(message: string, pool?: string): never {
  throw new CosmosError('config_invalid', message, pool === undefined ? undefined : { pool });
}

function checkCount(p: PoolConfig, field: 'reserved' | 'max', min: number): void {
  const v = p[field];
  if (v !== undefined && !(Number.isInteger(v) && v >= min))
    invalid(`pool "${p.name}": ${field} must be an integer >= ${min}, got ${String(v)}`, p.name);
}

/** Validates names, numbers, parents and cycles, and returns the pools parents first. */
function ordered(pools: readonly PoolConfig[]): PoolConfig[] {
  // Checked through `unknown` so that the guard does not widen `pools` to any[].
  const raw: unknown = pools;
  if (!Array.isArray(raw)) invalid('pools must be an array');
  const byName = new Map<string, PoolConfig>();
  for (const p of pools) {
    if (typeof p?.name !== 'string' || p.name === '') invalid('every pool needs a non-empty name');
    if (byName.has(p.name)) invalid(`pool "${p.name}" is defined twice`, p.name);
    checkCount(p, 'reserved', 0);
    checkCount(p, 'max', 1);
    byName.set(p.name, p);
  }
  for (const p of pools)
    if (p.parent !== undefined && !byName.has(p.parent))
      invalid(`pool "${p.name}" has parent "${p.parent}", which is not a pool`, p.name);

  const out: PoolConfig[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (p: PoolConfig, path: string[]): void => {
    const s = state.get(p.name);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cycle = [...path.slice(path.indexOf(p.name)), p.name].map((n) => `"${n}"`).join(' → ');
      invalid(`pools ${cycle} form a cycle of parents`, p.name);
    }
    state.set(p.name, 'visiting');
    if (p.parent !== undefined) visit(byName.get(p.parent) as PoolConfig, [...path, p.name]);
    state.set(p.name, 'done');
    out.push(p);
  };
  for (const p of pools) visit(p, []);
  return out;
}
