import type { Database } from './driver.js';
import { StoreClosedError } from '../../errors.js';

/** What an operation inside a group commit may do besides SQL: run code only once the commit is durable. */
export interface TxContext {
  afterCommit(fn: () => void): void;
}

interface Pending {
  op: (tx: TxContext) => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: every write operation requested during one turn of the event loop runs in one
 * `BEGIN IMMEDIATE … COMMIT`, so N small transitions cost one fsync instead of N. Each operation runs in its
 * own savepoint, so one failing operation rolls back alone and the others still commit. Callers see
 * ordinary promises that settle only after the commit is durable.
 */
export class GroupCommit {
  private queue: Pending[] = [];
  private scheduled = false;
  private closed = false;
  private readonly begin;
  private readonly commit;
  private readonly rollback;
  private readonly savepoint;
  private readonly releaseSavepoint;
  private readonly rollbackSavepoint;
  /** Commits made and operations carried: their ratio is the grouping achieved. */
  commits = 0;
  operations = 0;

  constructor(
    db: Database,
    private readonly maxGroupSize: number,
  ) {
    this.begin = db.prepare('BEGIN IMMEDIATE');
    this.commit = db.prepare('COMMIT');
    this.rollback = db.prepare('ROLLBACK');
    this.savepoint = db.prepare('SAVEPOINT op');
    this.releaseSavepoint = db.prepare('RELEASE op');
    this.rollbackSavepoint = db.prepare('ROLLBACK TO op');
  }

  run<T>(op: (tx: TxContext) => T): Promise<T> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ op, resolve: resolve as (v: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Runs everything still queued, then refuses new work. */
  close(): void {
    while (this.queue.length > 0) this.flushGroup();
    this.closed = true;
  }

  private flush(): void {
    this.scheduled = false;
    while (this.queue.length > 0) this.flushGroup();
  }

  private flushGroup(): void {
    const group = this.queue.splice(0, this.maxGroupSize);
    const results: { ok: boolean; value: unknown }[] = [];
    const after: (() => void)[] = [];
    try {
      this.begin.run();
    } catch (error) {
      for (const p of group) p.reject(error);
      return;
    }
    for (const p of group) {
      const mine: (() => void)[] = [];
      this.savepoint.run();
      try {
        const value = p.op({ afterCommit: (fn) => mine.push(fn) });
        this.releaseSavepoint.run();
        after.push(...mine);
        results.push({ ok: true, value });
      } catch (error) {
        this.rollbackSavepoint.run();
        this.releaseSavepoint.run();
        results.push({ ok: false, value: error });
      }
    }
    try {
      this.commit.run();
    } catch (error) {
      try {
        this.rollback.run();
      } catch {
        // The failed COMMIT may already have ended the transaction.
      }
      for (const p of group) p.reject(error);
      return;
    }
    this.commits++;
    this.operations += group.length;
    group.forEach((p, i) => {
      const r = results[i]!;
      if (r.ok) p.resolve(r.value);
      else p.reject(r.value);
    });
    for (const fn of after) fn();
  }
}
