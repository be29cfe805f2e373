/**
 * Micro-batching: items are gathered until `max` are waiting or `waitMs` passed since the first one, then
 * handed over together. A full batch goes at once, so a burst never waits for the timer.
 */
export class Gatherer<T> {
  private items: T[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly max: number,
    private readonly waitMs: number,
    private readonly flush: (items: T[]) => void,
  ) {}

  add(item: T): void {
    this.items.push(item);
    if (this.items.length >= this.max) this.flushNow();
    else if (this.timer === undefined) this.timer = setTimeout(() => this.flushNow(), this.waitMs);
  }

  get waiting(): number {
    return this.items.length;
  }

  flushNow(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.items.length > 0) this.flush(this.items.splice(0, this.max));
  }

  /** Hands over what waits and stops the timer. */
  close(): void {
    this.flushNow();
  }
}
