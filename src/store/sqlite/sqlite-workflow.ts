import { executionFromDb, matches, traceFromDb, type ExecutionDbRow, type TraceDbRow } from '../rows.js';
import type {
  ExecutionFilter,
  ExecutionRow,
  StepOutcome,
  StepWrite,
  TraceRow,
  WorkflowStore,
} from '../store.js';
import type { Database, Statement } from './driver.js';
import type { GroupCommit } from './group-commit.js';
import { listExecutionsSql, sqliteWorkflowQueries as q } from './queries.js';
import type { SqliteQueueStore } from './sqlite-queue.js';

type Stmts = { [K in keyof typeof q]: Statement };

/**
 * Executions on SQLite. A step is one group-commit operation (its own savepoint), so a conflicting step
 * rolls back alone while the steps sharing its commit go through.
 */
export class SqliteWorkflowStore implements WorkflowStore {
  private readonly s: Stmts;
  /** The executions list's statements, one per combination of filters. */
  private readonly lists = new Map<string, Statement>();

  constructor(
    private readonly db: Database,
    private readonly tx: GroupCommit,
    private readonly queue: SqliteQueueStore,
  ) {
    this.s = Object.fromEntries(Object.entries(q).map(([k, sql]) => [k, db.prepare(sql)])) as Stmts;
  }

  commitSteps(steps: StepWrite[], now: number): Promise<StepOutcome[]> {
    return Promise.all(
      steps.map((st) =>
        this.tx
          .run((tx): StepOutcome => {
            const r = st.row;
            const params = {
              id: r.id,
              workflow: r.workflow,
              version: r.version,
              status: r.status,
              priority: r.priority,
              parentId: r.parentId,
              seq: r.seq,
              doc: r.doc,
              createdAt: r.createdAt,
              updatedAt: r.updatedAt,
              finishedAt: r.finishedAt,
              owner: r.owner,
              ownerUntil: r.ownerUntil,
            };
            const written =
              r.seq === 1
                ? this.s.insertExecution.run(params)
                : this.s.updateExecution.run({ ...params, keepOwner: st.keepOwner ? 1 : 0 });
            if (written.changes === 0) throw new Conflict();
            if (st.trace !== null) this.s.insertTrace.run(r.id, r.seq, r.updatedAt, st.trace);
            for (const m of st.signals) this.s.insertSignal.run(r.id, m);
            if (st.search !== undefined) this.s.insertSearch.run(r.id, st.search);
            if (r.finishedAt !== null) this.s.dropSignals.run(r.id);
            if (st.enqueue.length > 0) this.queue.enqueueIn(tx, st.enqueue, now);
            return { ok: true };
          })
          .catch((e: unknown): StepOutcome => {
            if (e instanceof Conflict) return { ok: false, reason: 'conflict' };
            throw e;
          }),
      ),
    );
  }

  indexSearch(limit: number): Promise<number> {
    return this.tx.run(() => {
      const { upto } = this.s.searchBacklogUpTo.get(limit) as { upto: number | null };
      if (upto === null) return 0;
      this.s.searchIndex.run(upto);
      return this.s.searchIndexed.run(upto).changes;
    });
  }

  renewOwnership(ids: string[], owner: string, until: number): Promise<void> {
    return this.tx.run(() => {
      for (const id of ids) this.s.renewOwnership.run({ id, owner, until });
    });
  }

  lapsedOwnership(now: number, limit: number): Promise<string[]> {
    const rows = this.s.lapsedOwnership.all({ now, limit }) as { id: string }[];
    return Promise.resolve(rows.map((r) => r.id));
  }

  getExecutions(ids: string[]): Promise<ExecutionRow[]> {
    const out: ExecutionRow[] = [];
    for (const id of ids) {
      const row = this.s.getExecution.get(id) as ExecutionDbRow | undefined;
      if (row) out.push(executionFromDb(row));
    }
    return Promise.resolve(out);
  }

  countByStatus(): Promise<Record<string, number>> {
    const rows = this.s.countByStatus.all() as { status: string; n: number }[];
    return Promise.resolve(Object.fromEntries(rows.map((r) => [r.status, r.n])));
  }

  listExecutions(f: ExecutionFilter): Promise<ExecutionRow[]> {
    const { sql, params } = listExecutionsSql(f);
    let stmt = this.lists.get(sql);
    if (!stmt) this.lists.set(sql, (stmt = this.db.prepare(sql)));
    // A search that names an execution finds it by its key, not by scanning every document.
    const byId = f.q === undefined ? undefined : (this.s.getExecution.get(f.q) as ExecutionDbRow | undefined);
    if (byId && matches(executionFromDb(byId), f)) return Promise.resolve([executionFromDb(byId)]);
    return Promise.resolve((stmt.all(params) as ExecutionDbRow[]).map(executionFromDb));
  }

  openOnOtherVersions(workflow: string, version: string): Promise<{ id: string; version: string }[]> {
    return Promise.resolve(
      this.s.openOnOtherVersions.all(workflow, version) as { id: string; version: string }[],
    );
  }

  signalApplied(executionId: string, messageId: number): Promise<boolean> {
    return Promise.resolve(this.s.signalApplied.get(executionId, messageId) !== undefined);
  }

  trace(executionId: string): Promise<TraceRow[]> {
    return Promise.resolve((this.s.trace.all(executionId) as TraceDbRow[]).map(traceFromDb));
  }

  messageIds(queue: string, keys: string[]): Promise<number[]> {
    const ids: number[] = [];
    for (const k of keys) {
      const row = this.s.messageIdByKey.get(queue, k) as { id: number } | undefined;
      if (row) ids.push(row.id);
    }
    return Promise.resolve(ids);
  }
}

/** Rolls back one step's savepoint when its sequence check fails. */
class Conflict extends Error {}
