import pg from 'pg';
import { readEnv } from '../../src/env.js';

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';

export function databaseUrl(): string {
  return readEnv().testDatabaseUrl ?? DEFAULT_DATABASE_URL;
}

export async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: 'cosmos-bench' });
  await client.connect();
  return client;
}

/** Runs `fn` on a short-lived connection of its own, outside every pool under test. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connect(url);
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export function dropSchema(url: string, schema: string): Promise<void> {
  return withClient(url, async (c) => {
    await c.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
  });
}

/** The server settings that decide what a commit costs, recorded with every result. */
const SETTINGS = [
  'synchronous_commit',
  'fsync',
  'wal_sync_method',
  'full_page_writes',
  'shared_buffers',
  'max_connections',
  'autovacuum',
  'max_wal_size',
  'checkpoint_timeout',
];

export interface ServerInfo {
  version: string;
  settings: Record<string, string>;
}

export function serverInfo(url: string): Promise<ServerInfo> {
  return withClient(url, async (c) => {
    const version = (await c.query<{ v: string }>('SELECT version() AS v')).rows[0]!.v;
    // current_setting() renders values with their unit as postgresql.conf would (128MB, not 16384).
    const rows = await c.query<{ name: string; value: string }>(
      'SELECT name, current_setting(name) AS value FROM pg_settings WHERE name = ANY($1) ORDER BY name',
      [SETTINGS],
    );
    const settings = Object.fromEntries(rows.rows.map((r) => [r.name, r.value]));
    return { version, settings };
  });
}

/** A schema name unique to this run, valid for every library under test (lower case, no quoting needed). */
export function uniqueSchema(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}`;
}

/**
 * VACUUM ANALYZE every table of a schema: what autovacuum does to a deployment's tables after a burst of
 * inserts. Without it, a table bulk-loaded into a fresh schema has no statistics, and every system measured
 * here then gets plans that scan the whole backlog; all of them get this treatment before their clock starts.
 */
export function vacuumAnalyzeSchema(url: string, schema: string): Promise<string[]> {
  return withClient(url, async (c) => {
    const tables = await c.query<{ t: string }>(
      `SELECT tablename AS t FROM pg_tables WHERE schemaname = $1 ORDER BY tablename`,
      [schema],
    );
    const names = tables.rows.map((r) => r.t);
    for (const t of names)
      await c.query(`VACUUM (ANALYZE) ${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(t)}`);
    return names;
  });
}

/**
 * Levels the ground before a timed phase: statistics as autovacuum would leave them, and dirty pages flushed
 * so no phase pays for the previous phase's writes. CHECKPOINT needs superuser or pg_checkpoint; without
 * them the phase simply runs unflushed.
 */
export async function prepareForClock(url: string, schema: string): Promise<void> {
  await vacuumAnalyzeSchema(url, schema);
  await checkpoint(url);
}

export async function checkpoint(url: string): Promise<void> {
  await withClient(url, (c) => c.query('CHECKPOINT')).catch(() => undefined);
}

/** The current WAL position: two of them give the WAL a phase wrote (all of the server's, so it is noisy). */
export function walPosition(url: string): Promise<string> {
  return withClient(
    url,
    async (c) => (await c.query<{ l: string }>('SELECT pg_current_wal_lsn() AS l')).rows[0]!.l,
  );
}

export function walBytesSince(url: string, from: string): Promise<number> {
  return withClient(url, async (c) => {
    const r = await c.query<{ d: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1) AS d', [from]);
    return Number(r.rows[0]!.d);
  });
}
