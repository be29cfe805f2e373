import type { Pool, PoolClient, QueryResultRow } from 'pg';
import { executionFromDb, matches, traceFromDb, type ExecutionDbRow, type TraceDbRow } from '../rows.js';
import type {
  ExecutionFilter,
  ExecutionRow,
  StepOutcome,
  StepWrite,
  TraceRow,
  WorkflowStore,
} from '../store.js';
import { Lanes } from './lanes.js';
import type { PostgresQueueStore } from './postgres-queue.js';
import { commitStepsSql, listExecutionsQuery, pgWorkflowQueries as q, type StepParts } from './queries.js';

type QueryName = keyof typeof q;

/**
 * Executions on PostgreSQL. The steps given together commit in one transaction: executions written with
 * their sequence check, then, for the steps that won it, their trace, completions and outbox.
 */
export class PostgresWorkflowStore implements WorkflowStore {
  /** Step commits go through held connections: their latency is the workflow's latency. */
  private readonly lanes: Lanes;

  constructor(
    private readonly pool: Pool,
    private readonly queue: PostgresQueueStore,
    private readonly channel: string,
  ) {
    this.lanes = new Lanes(pool, 2);
  }

  /** Gives the held connections back (before the pool ends). */
  close(): Promise<void> {
    return this.lanes.close();
  }

  private async run<R extends QueryResultRow>(
    name: QueryName,
    values: unknown[],
    client: Pool | PoolClient = this.pool,
  ): Promise<R[]> {
    return (await client.query<R>({ name: `wf_${name}`, text: q[name], values })).rows;
  }

  async commitSteps(steps: StepWrite[], now: number): Promise<StepOutcome[]> {
    try {
      await this.commitTogether(steps, now);
      return steps.map(() => ({ ok: true }));
    } catch (e) {
      if ((e as { code?: string }).code !== 'CS001') throw e;
      // One of them lost its sequence check: find which, one step per statement.
      if (steps.length === 1) return [{ ok: false, reason: 'conflict' }];
      const out: StepOutcome[] = [];
      for (const st of steps) out.push(...(await this.commitSteps([st], now)));
      return out;
    }
  }

  private async commitTogether(steps: StepWrite[], now: number): Promise<void> {
    const rows = steps.map((s) => s.row);
    const traced = steps.filter((s) => s.trace !== null);
    const signals = steps.flatMap((s) => s.signals.map((m) => [s.row.id, m] as const));
    const outbox = steps.flatMap((s) => s.enqueue);
    const searched = steps.filter((s) => s.search !== undefined);
    const parts: StepParts = {
      insert: rows.some((x) => x.seq === 1),
      update: rows.some((x) => x.seq > 1),
      finished: rows.some((x) => x.finishedAt !== null),
      trace: traced.length > 0,
      signals: signals.length > 0,
      search: searched.length > 0,
      outbox: outbox.length > 0,
    };
    const values: unknown[] = [
      JSON.stringify(
        steps.map(({ row: x, keepOwner }) => ({
          id: x.id,
          workflow: x.workflow,
          version: x.version,
          status: x.status,
          priority: x.priority,
          parent_id: x.parentId,
          seq: x.seq,
          doc: x.doc,
          created_at: x.createdAt,
          updated_at: x.updatedAt,
          finished_at: x.finishedAt,
          owner: x.owner,
          owner_until: x.ownerUntil,
          keep_owner: keepOwner ?? false,
        })),
      ),
    ];
    if (parts.trace)
      values.push(
        JSON.stringify(
          traced.map((s) => ({ id: s.row.id, seq: s.row.seq, at: s.row.updatedAt, events: s.trace })),
        ),
      );
    if (parts.signals) values.push(JSON.stringify(signals.map(([id, message]) => ({ id, message }))));
    if (parts.search) values.push(JSON.stringify(searched.map((s) => ({ id: s.row.id, body: s.search }))));
    if (parts.outbox)
      values.push(
        JSON.stringify(
          outbox.map((m) => ({
            queue: m.queue,
            payload: m.payload,
            priority: m.priority,
            delay_ms: m.delayMs,
            ikey: m.idempotencyKey,
            xkey: m.exclusivityKey,
            max_attempts: m.maxAttempts,
          })),
        ),
        now,
        this.channel,
      );
    values.push(rows.length);
    const sql = commitStepsSql(parts);
    await this.lanes.query({ name: sql.name, text: sql.text, values });
  }

  async indexSearch(limit: number): Promise<number> {
    return (await this.run<{ n: number }>('indexSearch', [limit]))[0]?.n ?? 0;
  }

  async renewOwnership(ids: string[], owner: string, until: number): Promise<void> {
    await this.run('renewOwnership', [ids, owner, until]);
  }

  async lapsedOwnership(now: number, limit: number): Promise<string[]> {
    return (await this.run<{ id: string }>('lapsedOwnership', [now, limit])).map((r) => r.id);
  }

  async getExecutions(ids: string[]): Promise<ExecutionRow[]> {
    return (await this.run<ExecutionDbRow>('getExecutions', [ids])).map(executionFromDb);
  }

  async countByStatus(): Promise<Record<string, number>> {
    const rows = await this.run<{ status: string; n: number }>('countByStatus', []);
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  async listExecutions(f: ExecutionFilter): Promise<ExecutionRow[]> {
    if (f.q !== undefined) {
      // A search that names an execution finds it by its key, not by scanning every document.
      const [byId] = (await this.run<ExecutionDbRow>('getExecutions', [[f.q]])).map(executionFromDb);
      if (byId && matches(byId, f)) return [byId];
    }
    return (await this.pool.query<ExecutionDbRow>(listExecutionsQuery(f))).rows.map(executionFromDb);
  }

  openOnOtherVersions(workflow: string, version: string): Promise<{ id: string; version: string }[]> {
    return this.run<{ id: string; version: string }>('openOnOtherVersions', [workflow, version]);
  }

  async signalApplied(executionId: string, messageId: number): Promise<boolean> {
    return (await this.run('signalApplied', [executionId, messageId])).length > 0;
  }

  async trace(executionId: string): Promise<TraceRow[]> {
    return (await this.run<TraceDbRow>('trace', [executionId])).map(traceFromDb);
  }

  messageIds(queue: string, keys: string[]): Promise<number[]> {
    return this.queue.idsByKeys(queue, keys);
  }
}
