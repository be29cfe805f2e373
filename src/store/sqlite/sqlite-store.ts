import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { SqliteStoreOptions } from '../../config.js';
import { Wakeups } from '../../queue/wakeups.js';
import { loadMigrations, planMigrations, type AppliedMigration } from '../migrations.js';
import type { Store } from '../store.js';
import { CosmosError } from '../../errors.js';
import { Database } from './driver.js';
import { GroupCommit } from './group-commit.js';
import { SqliteClusterStore } from './sqlite-cluster.js';
import { SqliteQueueStore } from './sqlite-queue.js';
import { SqliteServiceStore } from './sqlite-services.js';
import { SqliteWorkflowStore } from './sqlite-workflow.js';

const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at INTEGER NOT NULL)`;

/**
 * The embedded store: one SQLite file in WAL mode with durable commits. Several processes may open the same
 * file (SQLite serializes their writes); in-process wake-ups reach only this process, others poll.
 */
export class SqliteStore implements Store {
  readonly dialect = 'sqlite';
  readonly wakeups = new Wakeups();
  readonly queue: SqliteQueueStore;
  readonly workflow: SqliteWorkflowStore;
  readonly services: SqliteServiceStore;
  readonly cluster: SqliteClusterStore;
  readonly groupCommit: GroupCommit;

  private constructor(
    readonly db: Database,
    options: SqliteStoreOptions,
  ) {
    this.groupCommit = new GroupCommit(db, options.maxGroupSize ?? 1000);
    this.queue = new SqliteQueueStore(db, this.groupCommit, this.wakeups);
    this.workflow = new SqliteWorkflowStore(db, this.groupCommit, this.queue);
    this.services = new SqliteServiceStore(db, this.groupCommit);
    this.cluster = new SqliteClusterStore(db);
  }

  static open(options: SqliteStoreOptions): SqliteStore {
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    const db = new Database(options.path);
    try {
      db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${(options.synchronous ?? 'full').toUpperCase()}`);
      db.pragma('foreign_keys = ON');
      migrate(db);
    } catch (error) {
      db.close();
      throw error;
    }
    return new SqliteStore(db, options);
  }

  schemaVersion(): Promise<number> {
    const row = this.db.prepare('SELECT coalesce(max(version), 0) AS v FROM schema_migrations').get() as {
      v: number;
    };
    return Promise.resolve(row.v);
  }

  ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
    return Promise.resolve();
  }

  close(): Promise<void> {
    if (this.db.open) {
      this.groupCommit.close();
      this.db.close();
    }
    return Promise.resolve();
  }
}

/** Applies pending migrations inside one write transaction, which is also the lock against other processes. */
function migrate(db: Database): void {
  const available = loadMigrations('sqlite');
  db.exec('BEGIN IMMEDIATE');
  try {
    db.exec(MIGRATIONS_TABLE);
    const applied = db.prepare('SELECT version, checksum FROM schema_migrations').all() as AppliedMigration[];
    const insert = db.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?, ?)');
    for (const m of planMigrations(applied, available)) {
      try {
        db.exec(m.sql);
      } catch (error) {
        throw new CosmosError(
          'migration_failed',
          `migration ${m.version} (${m.name}) failed: ${String(error)}`,
          {
            version: m.version,
          },
        );
      }
      insert.run(m.version, m.name, m.checksum, Date.now());
    }
    db.exec('COMMIT');
  } catch (error) {
    db.exec('ROLLBACK');
    throw error;
  }
}
