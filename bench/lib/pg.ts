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
];

export interface ServerInfo {
  version: string;
  settings: Record<string, string>;
}

export function serverInfo(url: string): Promise<ServerInfo> {
  return withClient(url, async (c) => {
    const version = (await c.query<{ v: string }>('SELECT version() AS v')).rows[0]!.v;
    const rows = await c.query<{ name: string; setting: string; unit: string | null }>(
      'SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1)',
      [SETTINGS],
    );
    const settings = Object.fromEntries(rows.rows.map((r) => [r.name, r.setting + (r.unit ?? '')]));
    return { version, settings };
  });
}

/** A schema name unique to this run, valid for every library under test (lower case, no quoting needed). */
export function uniqueSchema(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}`;
}
