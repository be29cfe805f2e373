import type { ClusterStore, DutyLocks, NodeRecord } from '../store.js';
import type { Database, Statement } from './driver.js';
import { nodeFromDb, type NodeDbRow } from '../cluster-rows.js';
import { sqliteClusterQueries as q } from './queries.js';

type Stmts = { [K in keyof typeof q]: Statement };

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
    return Promise.resolve((this.s.listNodes.all() as NodeDbRow[]).map(nodeFromDb));
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
