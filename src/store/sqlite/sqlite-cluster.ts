import type { ClusterStore, DutyLocks, NodeRecord } from '../store.js';
import type { Database, Statement } from './driver.js';
import { sqliteClusterQueries as q } from './queries.js';

type Stmts = { [K in keyof typeof q]: Statement };

interface NodeDbRow {
  id: string;
  name: string;
  roles: string;
  pools: string;
  slots: number;
  host: string;
  pid: number;
  version: string;
  url: string | null;
  status: NodeRecord['status'];
  heartbeat_ms: number;
  duties: string;
  started_at: number;
  heartbeat_at: number;
}

/**
 * The node registry on SQLite. Heartbeats are single-row writes outside group commit: they are rare, and a
 * beat must not wait behind a burst of steps.
 */
export class SqliteClusterStore implements ClusterStore {
  private readonly s: Stmts;

  constructor(db: Database) {
    this.s = Object.fromEntries(Object.entries(q).map(([k, sql]) => [k, db.prepare(sql)])) as Stmts;
  }

  beat(n: NodeRecord): Promise<void> {
    this.s.beat.run({
      ...n,
      roles: JSON.stringify(n.roles),
      pools: JSON.stringify(n.pools),
      duties: JSON.stringify(n.duties),
    });
    return Promise.resolve();
  }

  listNodes(): Promise<NodeRecord[]> {
    return Promise.resolve(
      (this.s.listNodes.all() as NodeDbRow[]).map((r) => ({
        id: r.id,
        name: r.name,
        roles: JSON.parse(r.roles) as string[],
        pools: JSON.parse(r.pools) as string[],
        slots: r.slots,
        host: r.host,
        pid: r.pid,
        version: r.version,
        url: r.url,
        status: r.status,
        heartbeatMs: r.heartbeat_ms,
        duties: JSON.parse(r.duties) as string[],
        startedAt: r.started_at,
        heartbeatAt: r.heartbeat_at,
      })),
    );
  }

  pruneNodes(before: number): Promise<number> {
    return Promise.resolve(this.s.pruneNodes.run(before).changes);
  }

  /** One machine: every holder is granted (see DutyLocks). */
  dutyLocks(): DutyLocks {
    const mine = new Set<string>();
    return {
      hold: (duty) => {
        mine.add(duty);
        return Promise.resolve(true);
      },
      held: () => [...mine].sort(),
      close: () => {
        mine.clear();
        return Promise.resolve();
      },
    };
  }
}
