import { NotFoundError, QueueNotExclusiveError, QueuePausedError } from '../../errors.js';
import type { Wakeups } from '../../queue/wakeups.js';
import type {
  DequeueRequest,
  EnqueueResult,
  LeaseRef,
  LeasedMessage,
  Message,
  MessageState,
  QueueConfig,
  QueueInfo,
  StateCounts,
} from '../../types.js';
import {
  emptyCounts,
  messageRowToMessage as toMessage,
  queueRowToInfo,
  type MessageRow,
  type QueueRow,
} from '../rows.js';
import type {
  FailItem,
  NewMessage,
  PendingClass,
  QueueDefinition,
  QueueStore,
  SettleReport,
} from '../store.js';
import type { Database, Statement } from './driver.js';
import type { GroupCommit, TxContext } from './group-commit.js';
import { metadataFilter, sqliteQueries as q } from './queries.js';

type Stmts = { [K in keyof typeof q]: Statement };

const bool = (b: boolean): number => (b ? 1 : 0);

interface KeyedRow {
  queue: string;
  exclusivity_key: string | null;
}

/**
 * The queue on SQLite. Every write goes through the group committer; reads run directly on the WAL
 * snapshot. SQLite serializes writers, so a check-then-write inside one operation is race-free.
 */
export class SqliteQueueStore implements QueueStore {
  private readonly s: Stmts;
  private readonly filtered = new Map<string, Statement>();

  constructor(
    private readonly db: Database,
    private readonly tx: GroupCommit,
    private readonly wakeups: Wakeups,
  ) {
    this.s = Object.fromEntries(Object.entries(q).map(([k, sql]) => [k, db.prepare(sql)])) as Stmts;
  }

  ensureQueues(queues: QueueDefinition[], d: QueueConfig, now: number): Promise<void> {
    return this.tx.run(() => {
      for (const { name, exclusive } of queues) this.insertQueue(name, { ...d, exclusive }, now);
    });
  }

  configureQueue(name: string, patch: Partial<QueueConfig>, d: QueueConfig, now: number): Promise<QueueInfo> {
    return this.tx.run(() => {
      this.insertQueue(name, d, now);
      const current = queueRowToInfo(this.s.getQueue.get(name) as QueueRow);
      const next = { ...current, ...patch };
      this.s.updateQueue.run({ name, ...this.configParams(next), now });
      return queueRowToInfo(this.s.getQueue.get(name) as QueueRow);
    });
  }

  getQueue(name: string): Promise<QueueInfo | undefined> {
    const row = this.s.getQueue.get(name) as QueueRow | undefined;
    return Promise.resolve(row && queueRowToInfo(row));
  }

  listQueues(): Promise<QueueInfo[]> {
    return Promise.resolve((this.s.listQueues.all() as QueueRow[]).map(queueRowToInfo));
  }

  enqueue(messages: NewMessage[], now: number): Promise<EnqueueResult[]> {
    return this.tx.run((tx) => this.enqueueIn(tx, messages, now));
  }

  /** enqueue() inside a caller's group-commit operation (the workflow outbox commits with its step). */
  enqueueIn(tx: TxContext, messages: NewMessage[], now: number): EnqueueResult[] {
    const configs = new Map<string, QueueInfo>();
    for (const m of messages) {
      if (configs.has(m.queue)) continue;
      const row = this.s.getQueue.get(m.queue) as QueueRow | undefined;
      if (!row) throw new NotFoundError('queue', m.queue);
      configs.set(m.queue, queueRowToInfo(row));
    }
    const paused = [...configs.values()].filter((c) => c.enqueuePaused).map((c) => c.name);
    if (paused.length > 0) throw new QueuePausedError(paused);
    const results = messages.map((m): EnqueueResult => {
      const cfg = configs.get(m.queue)!;
      if (m.exclusivityKey !== null && !cfg.exclusive) throw new QueueNotExclusiveError(m.queue);
      const delay = m.delayMs ?? cfg.delayMs;
      const row = this.s.insertMessage.get({
        queue: m.queue,
        state: delay > 0 ? 'invisible' : 'pending',
        priority: m.priority,
        payload: m.payload,
        metadata: m.metadata ? JSON.stringify(m.metadata) : null,
        idempotencyKey: m.idempotencyKey,
        exclusivityKey: m.exclusivityKey,
        maxAttempts: m.maxAttempts ?? cfg.maxAttempts,
        visibleAt: now + delay,
        now,
      }) as { id: number; state: MessageState } | undefined;
      if (row) return { id: row.id, created: true, state: row.state };
      const existing = this.s.findByIdempotencyKey.get(m.queue, m.idempotencyKey) as {
        id: number;
        state: MessageState;
      };
      return { id: existing.id, created: false, state: existing.state };
    });
    this.wakeAfter(tx, configs.keys());
    return results;
  }

  dequeue(req: DequeueRequest & { token: string }, now: number): Promise<LeasedMessage<string>[]> {
    return this.tx.run(() => {
      const row = this.s.getQueue.get(req.queue) as QueueRow | undefined;
      if (!row || row.dequeue_paused) return [];
      this.s.promoteQueue.run(req.queue, now);
      this.s.expireQueue.all({ queue: req.queue, now });
      const filterKeys = Object.keys(req.filter ?? {});
      const filterParams = Object.fromEntries(filterKeys.map((k, i) => [`f${i}`, req.filter![k]]));
      const ids = row.exclusive
        ? this.exclusiveCandidates(req.queue, req.max, filterKeys, filterParams)
        : (
            this.filteredStatement('candidates', filterKeys).all({
              queue: req.queue,
              limit: req.max,
              ...filterParams,
            }) as { id: number }[]
          ).map((r) => r.id);
      const expiresAt = now + (req.leaseMs ?? Number(row.lease_ms));
      return ids.map((id) => {
        const m = toMessage(
          this.s.lease.get({ id, token: req.token, now, expiresAt }) as MessageRow,
        ) as LeasedMessage<string>;
        m.lease = { id, token: req.token };
        return m;
      });
    });
  }

  complete(leases: LeaseRef[], now: number): Promise<number[]> {
    return this.tx.run((tx) => this.completeIn(tx, leases, now));
  }

  private completeIn(tx: TxContext, leases: LeaseRef[], now: number): number[] {
    const done: number[] = [];
    const freed: string[] = [];
    for (const l of leases) {
      const row = this.s.complete.get({ id: l.id, token: l.token, now }) as KeyedRow | undefined;
      if (!row) continue;
      done.push(l.id);
      if (row.exclusivity_key !== null) freed.push(row.queue);
    }
    // A freed exclusivity value lets the next message of that value go: wake its consumers.
    this.wakeAfter(tx, freed);
    return done;
  }

  fail(items: FailItem[], now: number): Promise<{ id: number; state: MessageState }[]> {
    return this.tx.run((tx) => {
      const out: (KeyedRow & { id: number; state: MessageState })[] = [];
      for (const f of items) {
        const row = this.s.fail.get({
          id: f.lease.id,
          token: f.lease.token,
          now,
          delay: f.retryDelayMs,
          error: f.error,
          final: f.final ? 1 : 0,
        }) as (KeyedRow & { id: number; state: MessageState }) | undefined;
        if (row) out.push(row);
      }
      this.wakeAfter(
        tx,
        out.filter((r) => r.state !== 'errored' || r.exclusivity_key !== null).map((r) => r.queue),
      );
      return out.map(({ id, state }) => ({ id, state }));
    });
  }

  release(leases: LeaseRef[], delayMs: number, now: number): Promise<number[]> {
    return this.tx.run((tx) => {
      const rows = leases
        .map((l) => this.s.release.get({ id: l.id, token: l.token, now, delay: delayMs }))
        .filter(Boolean) as { id: number; queue: string }[];
      this.wakeAfter(
        tx,
        rows.map((r) => r.queue),
      );
      return rows.map((r) => r.id);
    });
  }

  extend(
    leases: LeaseRef[],
    leaseMs: number,
    now: number,
  ): Promise<{ id: number; leaseExpiresAt: number }[]> {
    return this.tx.run(() =>
      leases
        .map((l) => this.s.extend.get({ id: l.id, token: l.token, expiresAt: now + leaseMs }))
        .filter(Boolean)
        .map((r) => {
          const row = r as { id: number; lease_expires_at: number };
          return { id: row.id, leaseExpiresAt: row.lease_expires_at };
        }),
    );
  }

  cancel(ids: number[], now: number): Promise<number[]> {
    return this.tx.run((tx) => {
      const rows = ids
        .map((id) => this.s.cancel.get({ id, now }) as (KeyedRow & { id: number }) | undefined)
        .filter((r) => r !== undefined);
      this.wakeAfter(
        tx,
        rows.filter((r) => r.exclusivity_key !== null).map((r) => r.queue),
      );
      return rows.map((r) => r.id);
    });
  }

  get(id: number): Promise<Message<string> | undefined> {
    const row = this.s.get.get(id) as MessageRow | undefined;
    return Promise.resolve(row && toMessage(row));
  }

  counts(queue: string): Promise<StateCounts> {
    const counts = emptyCounts();
    for (const r of this.s.counts.all(queue) as { state: MessageState; n: number }[]) counts[r.state] = r.n;
    return Promise.resolve(counts);
  }

  pendingByClass(queue: string): Promise<PendingClass[]> {
    return Promise.resolve(this.s.pendingByClass.all(queue) as PendingClass[]);
  }

  settle(now: number): Promise<SettleReport> {
    return this.tx.run((tx) => {
      const report = { promoted: 0, requeued: 0, errored: 0 };
      for (const { name } of this.s.queueNames.all() as { name: string }[]) {
        const promoted = this.s.promoteQueue.run(name, now).changes;
        const rows = this.s.expireQueue.all({ queue: name, now }) as { state: MessageState }[];
        const requeued = rows.filter((r) => r.state === 'pending').length;
        if (promoted + requeued > 0) tx.afterCommit(() => this.wakeups.notify(name));
        report.promoted += promoted;
        report.requeued += requeued;
        report.errored += rows.length - requeued;
      }
      return report;
    });
  }

  gc(now: number, limit: number): Promise<number> {
    return this.tx.run(() => {
      let n = 0;
      for (const row of this.s.listQueues.all() as QueueRow[]) {
        if (n >= limit) break;
        n += this.s.gcQueue.run({
          queue: row.name,
          now,
          retentionMs: row.retention_ms,
          limit: limit - n,
        }).changes;
      }
      return n;
    });
  }

  nextDueAt(queue: string): Promise<number | null> {
    const a = (this.s.nextInvisible.get(queue) as { t: number | null }).t;
    const b = (this.s.nextExpiry.get(queue) as { t: number | null }).t;
    const times = [a, b].filter((t): t is number => t !== null);
    return Promise.resolve(times.length ? Math.min(...times) : null);
  }

  private insertQueue(name: string, c: QueueConfig, now: number): void {
    this.s.insertQueue.run({ name, ...this.configParams(c), now });
  }

  private configParams(c: QueueConfig): Record<string, number> {
    return {
      leaseMs: c.leaseMs,
      delayMs: c.delayMs,
      maxAttempts: c.maxAttempts,
      retentionMs: c.retentionMs,
      enqueuePaused: bool(c.enqueuePaused),
      dequeuePaused: bool(c.dequeuePaused),
      exclusive: bool(c.exclusive),
    };
  }

  /** Walks pending messages in priority order, taking the first of each key not already leased. */
  private exclusiveCandidates(
    queue: string,
    max: number,
    filterKeys: string[],
    filterParams: Record<string, unknown>,
  ): number[] {
    const stmt = this.filteredStatement('exclusiveCandidates', filterKeys);
    const picked: number[] = [];
    const keys = new Set<string>();
    let after = { afterPriority: Number.MIN_SAFE_INTEGER, afterId: 0 };
    const page = Math.max(64, max * 4);
    while (picked.length < max) {
      const rows = stmt.all({ queue, limit: page, ...after, ...filterParams }) as {
        id: number;
        priority: number;
        exclusivity_key: string | null;
      }[];
      for (const r of rows) {
        if (r.exclusivity_key !== null) {
          if (keys.has(r.exclusivity_key)) continue;
          keys.add(r.exclusivity_key);
        }
        picked.push(r.id);
        if (picked.length === max) break;
      }
      if (rows.length < page) break;
      const last = rows[rows.length - 1]!;
      after = { afterPriority: last.priority, afterId: last.id };
    }
    return picked;
  }

  private filteredStatement(name: 'candidates' | 'exclusiveCandidates', keys: string[]): Statement {
    if (keys.length === 0) return this.s[name];
    const cacheKey = `${name}:${keys.join('\u0000')}`;
    let stmt = this.filtered.get(cacheKey);
    if (!stmt) {
      stmt = this.db.prepare(q[name].replace('/*filter*/', metadataFilter(keys)));
      this.filtered.set(cacheKey, stmt);
    }
    return stmt;
  }

  private wakeAfter(tx: { afterCommit(fn: () => void): void }, queues: Iterable<string>): void {
    const names = [...new Set(queues)];
    if (names.length > 0) tx.afterCommit(() => names.forEach((n) => this.wakeups.notify(n)));
  }
}
