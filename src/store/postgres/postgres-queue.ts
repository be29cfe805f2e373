import type { Pool, PoolClient, QueryResultRow } from 'pg';
import { NotFoundError, QueueNotExclusiveError, QueuePausedError } from '../../errors.js';
import type { Wakeups } from '../../queue/wakeups.js';
import type {
  DequeueRequest,
  EnqueueResult,
  LeaseRef,
  LeasedMessage,
  Message,
  MessageState,
  Metadata,
  QueueConfig,
  QueueInfo,
  StateCounts,
} from '../../types.js';
import { emptyCounts, messageRowToMessage, queueRowToInfo, type MessageRow, type QueueRow } from '../rows.js';
import {
  RetryEnqueue,
  type FailItem,
  type NewMessage,
  type PendingClass,
  type QueueDefinition,
  type QueueStore,
  type SettleReport,
} from '../store.js';
import { pgQueries as q } from './queries.js';

type QueryName = keyof typeof q;

/** Rows touched per maintenance statement, so one call never holds locks on a huge set. */
const SETTLE_LIMIT = 10_000;
const KIND_TTL_MS = 5_000;

/**
 * Lease refs as the statements take them: each id once, the distinct tokens, and each id's token as a 1-based
 * slot (a batch from one dequeue shares one token, which then crosses the wire once). `kept` indexes the
 * input items that survive de-duplication, for the statements that take more per item.
 */
function compactRefs(refs: LeaseRef[]): { args: [number[], string[], number[]]; kept: number[] } {
  const ids: number[] = [];
  const slots: number[] = [];
  const tokens: string[] = [];
  const slotOf = new Map<string, number>();
  const seen = new Set<string>();
  const kept: number[] = [];
  refs.forEach((r, i) => {
    const key = `${r.id}\u0000${r.token}`;
    if (seen.has(key)) return;
    seen.add(key);
    let slot = slotOf.get(r.token);
    if (slot === undefined) {
      slot = tokens.push(r.token);
      slotOf.set(r.token, slot);
    }
    ids.push(r.id);
    slots.push(slot);
    kept.push(i);
  });
  return { args: [ids, tokens, slots], kept };
}

/** A row of the dequeue and leaseIds statements: what a consumer needs, nothing more. */
interface LeasedRow {
  expired: boolean;
  id: string | null;
  priority: string;
  attempts: number;
  last_error: string | null;
  lease_expires_at: string;
  payload: string;
  metadata: Metadata | null;
  idempotency_key: string | null;
  exclusivity_key: string | null;
  max_attempts: number;
  visible_at: string;
  created_at: string;
}

/** Rows arrive in priority order; a row without id only carries the `expired` flag. */
function leased(rows: LeasedRow[], queue: string, token: string, now: number): LeasedMessage<string>[] {
  const out: LeasedMessage<string>[] = [];
  for (const r of rows) {
    if (r.id === null) continue;
    const id = Number(r.id);
    out.push({
      id,
      queue,
      state: 'running',
      priority: Number(r.priority),
      payload: r.payload,
      metadata: r.metadata ?? {},
      idempotencyKey: r.idempotency_key,
      exclusivityKey: r.exclusivity_key,
      attempts: r.attempts,
      maxAttempts: r.max_attempts,
      createdAt: Number(r.created_at),
      visibleAt: Number(r.visible_at),
      leasedAt: now,
      leaseExpiresAt: Number(r.lease_expires_at),
      finishedAt: null,
      lastError: r.last_error,
      lease: { id, token },
    });
  }
  return out;
}

const isRetryable = (e: unknown): boolean => {
  const code = (e as { code?: string }).code;
  return code === '40P01' || code === '40001';
};

/**
 * The queue on PostgreSQL. Consumers on any number of nodes coordinate only through row locks
 * (FOR UPDATE SKIP LOCKED), the exclusive_leases primary key, and NOTIFY for wake-ups.
 */
export class PostgresQueueStore implements QueueStore {
  /**
   * Whether each queue is exclusive, remembered briefly so a dequeue is one round trip. Both dequeue paths
   * stay safe on a stale answer: the plain one refuses exclusive queues, the exclusive one is stricter.
   */
  private readonly kinds = new Map<string, { exclusive: boolean; at: number }>();

  constructor(
    private readonly pool: Pool,
    private readonly channel: string,
    private readonly wakeups: Wakeups,
  ) {}

  private async run<R extends QueryResultRow>(
    name: QueryName,
    values: unknown[],
    client: Pool | PoolClient = this.pool,
  ): Promise<R[]> {
    const res = await client.query<R>({ name, text: q[name], values });
    return res.rows;
  }

  async ensureQueues(queues: QueueDefinition[], d: QueueConfig, now: number): Promise<void> {
    await this.run('insertQueues', [
      queues.map((x) => x.name),
      d.leaseMs,
      d.delayMs,
      d.maxAttempts,
      d.retentionMs,
      d.enqueuePaused,
      d.dequeuePaused,
      now,
      queues.map((x) => x.exclusive),
    ]);
  }

  async configureQueue(
    name: string,
    patch: Partial<QueueConfig>,
    d: QueueConfig,
    now: number,
  ): Promise<QueueInfo> {
    await this.ensureQueues([{ name, exclusive: d.exclusive }], d, now);
    return this.transaction(async (c) => {
      const [row] = await this.run<QueueRow>('getQueueForUpdate', [name], c);
      const n = { ...queueRowToInfo(row!), ...patch };
      const [updated] = await this.run<QueueRow>(
        'updateQueue',
        [
          name,
          n.leaseMs,
          n.delayMs,
          n.maxAttempts,
          n.retentionMs,
          n.enqueuePaused,
          n.dequeuePaused,
          n.exclusive,
          now,
        ],
        c,
      );
      this.kinds.delete(name);
      return queueRowToInfo(updated!);
    });
  }

  async getQueue(name: string): Promise<QueueInfo | undefined> {
    const [row] = await this.run<QueueRow>('getQueue', [name]);
    return row && queueRowToInfo(row);
  }

  async listQueues(): Promise<QueueInfo[]> {
    return (await this.run<QueueRow>('listQueues', [])).map(queueRowToInfo);
  }

  async enqueue(messages: NewMessage[], now: number): Promise<EnqueueResult[]> {
    const [row] = await this.run<{
      refused: { queue: string; why: string }[] | null;
      ids: string[];
      states: MessageState[];
      keys: (string | null)[];
    }>('enqueue', [
      messages.map((m) => m.queue),
      messages.map((m) => m.payload),
      messages.map((m) => m.priority),
      messages.map((m) => m.delayMs),
      messages.map((m) => m.idempotencyKey),
      messages.map((m) => (m.metadata ? JSON.stringify(m.metadata) : null)),
      messages.map((m) => m.exclusivityKey),
      messages.map((m) => m.maxAttempts),
      messages.map((_, i) => i),
      now,
      this.channel,
    ]);
    const { refused, ids, states, keys } = row!;
    if (refused && refused.length > 0) {
      const first = refused[0]!;
      if (first.why === 'missing') throw new NotFoundError('queue', first.queue);
      if (first.why === 'not_exclusive') throw new QueueNotExclusiveError(first.queue);
      throw new QueuePausedError([...new Set(refused.filter((r) => r.why === 'paused').map((r) => r.queue))]);
    }
    if (ids.length === messages.length)
      return ids.map((id, i) => ({ id: Number(id), created: true, state: states[i]! }));
    // Inserted rows come back in input order; the others met an existing message with the same key (the
    // facade sends each key once per batch), which is looked up.
    const inserted = new Set(keys.filter((k): k is string => k !== null));
    const conflicts = messages.filter(
      (m) => m.idempotencyKey !== null && !inserted.has(`${m.queue}\u001f${m.idempotencyKey}`),
    );
    const existing = await this.run<{
      id: string;
      state: MessageState;
      queue: string;
      idempotency_key: string;
    }>('findByIdempotencyKeys', [conflicts.map((m) => m.queue), conflicts.map((m) => m.idempotencyKey)]);
    const byKey = new Map(existing.map((r) => [`${r.queue}\u001f${r.idempotency_key}`, r]));
    let next = 0;
    return messages.map((m) => {
      const key = m.idempotencyKey === null ? null : `${m.queue}\u001f${m.idempotencyKey}`;
      if (key === null || inserted.has(key)) {
        const i = next++;
        return { id: Number(ids[i]), created: true, state: states[i]! };
      }
      const r = byKey.get(key);
      // Collected between the conflict and the lookup: the caller retries and inserts afresh.
      if (!r) throw new RetryEnqueue();
      return { id: Number(r.id), created: false, state: r.state };
    });
  }

  async dequeue(req: DequeueRequest & { token: string }, now: number): Promise<LeasedMessage<string>[]> {
    const filter = req.filter && Object.keys(req.filter).length > 0 ? JSON.stringify(req.filter) : null;
    const kind = await this.kind(req.queue, now);
    if (!kind) return [];
    if (!kind.exclusive) {
      const args = [req.queue, req.max, now, req.token, filter, req.leaseMs ?? null];
      const rows = await this.run<LeasedRow>('dequeue', [...args, true]);
      if (!rows[0]?.expired) return leased(rows, req.queue, req.token, now);
      // An expired lease waits on this queue: settle it so its messages compete in priority order.
      await this.run('settleQueue', [req.queue, now, SETTLE_LIMIT, this.channel]);
      return leased(await this.run<LeasedRow>('dequeue', [...args, false]), req.queue, req.token, now);
    }
    await this.run('settleQueue', [req.queue, now, SETTLE_LIMIT, this.channel]);
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.dequeueExclusive(req, now, filter, req.leaseMs);
      } catch (e) {
        if (!isRetryable(e) || attempt >= 5) throw e;
      }
    }
  }

  /**
   * Exclusive dequeue: pick the first pending message of each key not already claimed, claim the keys
   * (the primary key of exclusive_leases arbitrates between concurrent consumers against the latest
   * committed state, not a stale snapshot), lease what was claimed, give back claims that lost the race.
   */
  private dequeueExclusive(
    req: DequeueRequest & { token: string },
    now: number,
    filter: string | null,
    leaseMs: number | undefined,
  ): Promise<LeasedMessage<string>[]> {
    return this.transaction(async (c) => {
      const [cfg] = await this.run<{ lease_ms: number; dequeue_paused: boolean }>(
        'queueLease',
        [req.queue],
        c,
      );
      if (!cfg || cfg.dequeue_paused) return [];
      const picked: { id: number; key: string | null }[] = [];
      const keys = new Set<string>();
      let after: [number, number] = [Number.MIN_SAFE_INTEGER, 0];
      const page = Math.max(64, req.max * 4);
      while (picked.length < req.max) {
        const rows = await this.run<{ id: string; priority: string; exclusivity_key: string | null }>(
          'exclusiveCandidates',
          [req.queue, page, filter, after[0], after[1]],
          c,
        );
        for (const r of rows) {
          const key = r.exclusivity_key;
          if (key !== null) {
            if (keys.has(key)) continue;
            keys.add(key);
          }
          picked.push({ id: Number(r.id), key });
          if (picked.length === req.max) break;
        }
        if (rows.length < page) break;
        const last = rows[rows.length - 1]!;
        after = [Number(last.priority), Number(last.id)];
      }
      if (picked.length === 0) return [];
      const keyed = picked.filter((p) => p.key !== null);
      const claimed = keyed.length
        ? (
            await this.run<{ message_id: string }>(
              'claimKeys',
              [req.queue, keyed.map((p) => p.key), keyed.map((p) => p.id)],
              c,
            )
          ).map((r) => Number(r.message_id))
        : [];
      const ids = [...picked.filter((p) => p.key === null).map((p) => p.id), ...claimed];
      if (ids.length === 0) return [];
      const rows = await this.run<LeasedRow>(
        'leaseIds',
        [req.queue, ids, req.token, now, now + (leaseMs ?? cfg.lease_ms)],
        c,
      );
      const got = new Set(rows.map((r) => Number(r.id)));
      const lost = claimed.filter((id) => !got.has(id));
      if (lost.length > 0) await this.run('unclaimKeys', [req.queue, lost], c);
      return leased(rows, req.queue, req.token, now);
    });
  }

  async complete(leases: LeaseRef[], now: number): Promise<number[]> {
    if (leases.length === 0) return [];
    const rows = await this.run<{ id: string }>('complete', [...compactRefs(leases).args, now, this.channel]);
    return rows.map((r) => Number(r.id));
  }

  /** Ids of messages by idempotency key. */
  async idsByKeys(queue: string, keys: string[]): Promise<number[]> {
    const rows = await this.run<{ id: string }>('findByIdempotencyKeys', [keys.map(() => queue), keys]);
    return rows.map((r) => Number(r.id));
  }

  async fail(items: FailItem[], now: number): Promise<{ id: number; state: MessageState }[]> {
    if (items.length === 0) return [];
    const { args, kept } = compactRefs(items.map((f) => f.lease));
    const rows = await this.run<{ id: string; state: MessageState }>('fail', [
      ...args,
      kept.map((i) => items[i]!.error),
      kept.map((i) => items[i]!.retryDelayMs),
      now,
      this.channel,
      kept.map((i) => items[i]!.final ?? false),
    ]);
    return rows.map((r) => ({ id: Number(r.id), state: r.state }));
  }

  async release(leases: LeaseRef[], delayMs: number, now: number): Promise<number[]> {
    if (leases.length === 0) return [];
    const rows = await this.run<{ id: string }>('release', [
      ...compactRefs(leases).args,
      now,
      delayMs,
      this.channel,
    ]);
    return rows.map((r) => Number(r.id));
  }

  async extend(
    leases: LeaseRef[],
    leaseMs: number,
    now: number,
  ): Promise<{ id: number; leaseExpiresAt: number }[]> {
    if (leases.length === 0) return [];
    const rows = await this.run<{ id: string; lease_expires_at: string }>('extend', [
      ...compactRefs(leases).args,
      now + leaseMs,
    ]);
    return rows.map((r) => ({ id: Number(r.id), leaseExpiresAt: Number(r.lease_expires_at) }));
  }

  async cancel(ids: number[], now: number): Promise<number[]> {
    if (ids.length === 0) return [];
    return (await this.run<{ id: string }>('cancel', [ids, now, this.channel])).map((r) => Number(r.id));
  }

  async get(id: number): Promise<Message<string> | undefined> {
    const [row] = await this.run<MessageRow>('get', [id]);
    return row && messageRowToMessage(row);
  }

  async counts(queue: string): Promise<StateCounts> {
    const counts = emptyCounts();
    for (const r of await this.run<{ state: MessageState; n: string }>('counts', [queue]))
      counts[r.state] = Number(r.n);
    return counts;
  }

  async pendingByClass(queue: string): Promise<PendingClass[]> {
    const rows = await this.run<{ class: string; n: string; oldest: string }>('pendingByClass', [queue]);
    return rows.map((r) => ({ class: r.class, n: Number(r.n), oldest: Number(r.oldest) }));
  }

  async gc(now: number, limit: number): Promise<number> {
    let n = 0;
    for (const queue of await this.listQueues()) {
      if (n >= limit) break;
      const [row] = await this.run<{ n: string }>('gcQueue', [
        queue.name,
        now - queue.retentionMs,
        limit - n,
      ]);
      n += Number(row!.n);
    }
    return n;
  }

  async nextDueAt(queue: string): Promise<number | null> {
    const [row] = await this.run<{ t: string | null }>('nextDueAt', [queue]);
    return row?.t == null ? null : Number(row.t);
  }

  private async kind(queue: string, now: number): Promise<{ exclusive: boolean } | undefined> {
    const cached = this.kinds.get(queue);
    if (cached && now - cached.at < KIND_TTL_MS) return cached;
    const info = await this.getQueue(queue);
    if (!info) return undefined;
    const kind = { exclusive: info.exclusive, at: now };
    this.kinds.set(queue, kind);
    return kind;
  }

  async settle(now: number): Promise<SettleReport> {
    const total = { requeued: 0, errored: 0, promoted: 0 };
    for (const queue of await this.listQueues()) {
      const [r] = await this.run<{ requeued: string; errored: string; promoted: string }>('settleQueue', [
        queue.name,
        now,
        SETTLE_LIMIT,
        this.channel,
      ]);
      total.requeued += Number(r!.requeued);
      total.errored += Number(r!.errored);
      total.promoted += Number(r!.promoted);
      if (Number(r!.requeued) + Number(r!.promoted) > 0) this.wakeups.notify(queue.name);
    }
    return total;
  }

  private async transaction<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      return out;
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      c.release();
    }
  }
}
