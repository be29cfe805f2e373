/**
 * Micro-batching: items are gathered until `max` are waiting or `waitMs` passed since the first one, then
 * handed over together. A full batch goes at once, so a burst never waits for the timer.
 */
export class Gatherer<T> {
  private items: T[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** When the oldest waiting item arrived (performance.now()); read only while items wait. */
  private since = 0;

  constructor(
    private readonly max: number,
    private readonly waitMs: number,
    private readonly flush: (items: T[]) => void,
  ) {}

  add(item: T): void {
    if (this.items.push(item) === 1) {
      this.since = performance.now();
      if (this.timer === undefined) this.timer = setTimeout(this.onTimer, this.waitMs);
    }
    // A full batch leaves the timer running: under a burst the next batch starts at once, and arming and
    // clearing a timer for every batch cost about as much as gathering it. The timer checks when it fires.
    if (this.items.length >= this.max) this.flush(this.items.splice(0, this.max));
  }

  get waiting(): number {
    return this.items.length;
  }

  /** Hands over everything that waits, now. */
  flushNow(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.items.length > 0) this.flush(this.items.splice(0, this.max));
  }

  /** Hands over what waits and stops the timer. */
  close(): void {
    this.flushNow();
  }

  /**
   * Flushes once the oldest waiting item has waited `waitMs`; sooner, the timer was armed for an earlier
   * batch, and it waits out the rest. Timers fire on a millisecond clock, so one that fires up to a
   * millisecond short of `waitMs` by performance.now() is on time, as the plain timer it replaces was.
   */
  private readonly onTimer = (): void => {
    this.timer = undefined;
    if (this.items.length === 0) return;
    const left = this.waitMs - (performance.now() - this.since);
    if (left <= 1) this.flushNow();
    else this.timer = setTimeout(this.onTimer, left);
  };
}
