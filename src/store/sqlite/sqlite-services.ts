import { serviceFromDb, serviceParams, type ServiceDbRow } from '../service-rows.js';
import type { ServiceRecord, ServiceStore } from '../store.js';
import type { Database, Statement } from './driver.js';
import type { GroupCommit } from './group-commit.js';
import { sqliteServiceQueries as q } from './queries.js';

type Stmts = { [K in keyof typeof q]: Statement };

/** Deployed services on SQLite: a deploy is one group-commit operation. */
export class SqliteServiceStore implements ServiceStore {
  private readonly s: Stmts;

  constructor(
    db: Database,
    private readonly tx: GroupCommit,
  ) {
    this.s = Object.fromEntries(Object.entries(q).map(([k, sql]) => [k, db.prepare(sql)])) as Stmts;
  }

  save(records: ServiceRecord[]): Promise<void> {
    return this.tx.run(() => {
      for (const r of records) {
        this.s.upsertService.run(...serviceParams(r));
        this.s.dropCalls.run(r.name);
        for (const callee of r.calls) this.s.insertCall.run(r.name, callee);
      }
    });
  }

  list(): Promise<ServiceRecord[]> {
    return Promise.resolve((this.s.listServices.all() as ServiceDbRow[]).map(serviceFromDb));
  }

  callersOf(name: string): Promise<{ name: string; depth: number }[]> {
    return Promise.resolve(this.s.callersOf.all(name) as { name: string; depth: number }[]);
  }
}
