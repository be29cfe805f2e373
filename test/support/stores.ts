import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { PostgresStoreOptions, SqliteStoreOptions, StoreOptions } from '../../src/config.js';
import { readEnv } from '../../src/env.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';

export const pgUrl = readEnv().testDatabaseUrl;

/** A fresh, isolated place for one test: a temp SQLite file, or a PostgreSQL schema of its own. */
export interface TestPlace {
  options: StoreOptions;
  open(extra?: Partial<SqliteStoreOptions> | Partial<PostgresStoreOptions>): Promise<Store>;
  cleanup(): Promise<void>;
}

export interface StoreKind {
  name: 'sqlite' | 'postgres';
  place(): TestPlace;
}

let counter = 0;

export const sqliteKind: StoreKind = {
  name: 'sqlite',
  place() {
    const dir = mkdtempSync(join(tmpdir(), 'cosmos-test-'));
    const options: SqliteStoreOptions = { kind: 'sqlite', path: join(dir, 'cosmos.db') };
    return {
      options,
      open: (extra = {}) => openStore({ ...options, ...extra } as StoreOptions),
      cleanup: () => {
        rmSync(dir, { recursive: true, force: true });
        return Promise.resolve();
      },
    };
  },
};

export const postgresKind: StoreKind = {
  name: 'postgres',
  place() {
    const schema = `t_${process.pid}_${Date.now().toString(36)}_${counter++}`;
    const options: PostgresStoreOptions = { kind: 'postgres', url: pgUrl!, schema, poolSize: 4 };
    return {
      options,
      open: (extra = {}) => openStore({ ...options, ...extra } as StoreOptions),
      cleanup: () => dropSchema(schema),
    };
  },
};

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: pgUrl });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
  } finally {
    await client.end();
  }
}

/** Both stores when PostgreSQL is configured; SQLite alone otherwise (global-setup says so loudly). */
export const storeKinds: StoreKind[] = pgUrl ? [sqliteKind, postgresKind] : [sqliteKind];

/** A clock tests move by hand, so leases and delays expire without sleeping. */
export function manualClock(start = 1_700_000_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}
