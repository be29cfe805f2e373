// Regenerates schema/sqlite.sql and schema/postgres.sql from the migrations (PostgreSQL from
// COSMOS_TEST_DATABASE_URL). test/store/store.test.ts fails when they are out of date.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { readEnv } from '../src/env.js';
import { PostgresStore } from '../src/store/postgres/postgres-store.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { dumpPostgres, dumpSqlite } from './schema-dump.js';

const dir = mkdtempSync(join(tmpdir(), 'cosmos-schema-'));
const sqlite = SqliteStore.open({ kind: 'sqlite', path: join(dir, 'c.db') });
writeFileSync('schema/sqlite.sql', dumpSqlite(sqlite.db));
await sqlite.close();
rmSync(dir, { recursive: true, force: true });

const url = readEnv().testDatabaseUrl ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `schema_dump_${process.pid}`;
const store = await PostgresStore.open({ kind: 'postgres', url, schema, listen: false });
await store.close();
const client = new pg.Client({ connectionString: url });
await client.connect();
writeFileSync('schema/postgres.sql', await dumpPostgres(client, schema));
await client.query(`DROP SCHEMA ${schema} CASCADE`);
await client.end();
console.log('wrote schema/sqlite.sql and schema/postgres.sql');
