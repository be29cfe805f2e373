/** What a heap element carries: its index in the one heap it is in, or -1 (or absent) when in none. */
export interface HeapSlot {
  heapIndex?: number;
}

/**
 * A binary min-heap that remembers where each element sits. The scheduler nests heaps (items inside lanes
 * inside pools), so when a lane's head changes the lane has to move inside its parent heap, and a canceled
 * item has to leave from the middle: both are O(log n) here instead of a rebuild. Elements are objects, each
 * in at most one heap at a time, and the element itself holds its index: a Map from element to index cost
 * a set and a delete per push and remove, and on a long-lived Map those were most of a warm dispatch's
 * scheduling time. Written in-house: it is ~100 lines and the npm heaps either lack positional
 * update/remove or carry more than we need.
 */
export class Heap<T extends HeapSlot> {
  private readonly items: T[] = [];
  private readonly before: (a: T, b: T) => boolean;

  /** `before(a, b)` is true when `a` must come out before `b`; it must be a strict weak order. */
  constructor(before: (a: T, b: T) => boolean) {
    this.before = before;
  }

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  has(x: T): boolean {
    const i = x.heapIndex;
    return i !== undefined && i >= 0 && this.items[i] === x;
  }

  push(x: T): void {
    if (this.has(x)) throw new Error('Heap.push: element is already in the heap');
    if (x.heapIndex !== undefined && x.heapIndex >= 0)
      throw new Error('Heap.push: element is in another heap');
    this.items.push(x);
    this.up(this.items.length - 1);
  }

  pop(): T | undefined {
    const top = this.items[0];
    if (top !== undefined) this.removeAt(0);
    return top;
  }

  remove(x: T): boolean {
    if (!this.has(x)) return false;
    this.removeAt(x.heapIndex as number);
    return true;
  }

  /** Restores the order after `x`'s key changed, in either direction. */
  update(x: T): void {
    if (!this.has(x)) throw new Error('Heap.update: element is not in the heap');
    this.down(this.up(x.heapIndex as number));
  }

  private removeAt(i: number): void {
    const gone = this.items[i] as T;
    const last = this.items.pop() as T;
    gone.heapIndex = -1;
    if (i === this.items.length) return;
    this.items[i] = last;
    this.down(this.up(i));
  }

  /** Returns the final index so update/remove can continue downwards from there. */
  private up(i: number): number {
    const x = this.items[i] as T;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = this.items[p] as T;
      if (!this.before(x, parent)) break;
      this.place(parent, i);
      i = p;
    }
    this.place(x, i);
    return i;
  }

  private down(i: number): void {
    const n = this.items.length;
    const x = this.items[i] as T;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.before(this.items[r] as T, this.items[l] as T) ? r : l;
      const child = this.items[c] as T;
      if (!this.before(child, x)) break;
      this.place(child, i);
      i = c;
    }
    this.place(x, i);
  }

  private place(x: T, i: number): void {
    this.items[i] = x;
    x.heapIndex = i;
  }
}
