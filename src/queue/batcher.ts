/**
 * Gathers calls made during one turn of the event loop into one flush (one SQL statement, one commit).
 * `flush` receives the items and returns one result per item, in order.
 */
export class Batcher<I, O> {
  private items: I[] = [];
  private waiters: { resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  private scheduled = false;
  private inFlight = new Set<Promise<void>>();

  /**
   * `maxInFlight`: flushes under way at once; while that many are, new items wait and leave together when
   * one lands, so the batch grows with the load (group commit) instead of queueing small flushes.
   */
  constructor(
    private readonly flush: (items: I[]) => Promise<O[]>,
    private readonly maxSize = 1000,
    private readonly maxInFlight = Infinity,
  ) {}

  add(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.items.push(item);
      this.waiters.push({ resolve, reject });
      if (this.items.length >= this.maxSize) this.drain();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.drain());
      }
    });
  }

  /** Resolves when everything added so far has been flushed. */
  async idle(): Promise<void> {
    if (this.items.length > 0) this.drain();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private drain(): void {
    this.scheduled = false;
    if (this.items.length === 0 || this.inFlight.size >= this.maxInFlight) return;
    const items = this.items;
    const waiters = this.waiters;
    this.items = [];
    this.waiters = [];
    const p = this.flush(items).then(
      (out) => waiters.forEach((w, i) => w.resolve(out[i]!)),
      (error: unknown) => waiters.forEach((w) => w.reject(error)),
    );
    this.inFlight.add(p);
    void p.finally(() => {
      this.inFlight.delete(p);
      if (this.items.length > 0 && !this.scheduled) this.drain();
    });
  }
}
