import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { dumpPostgres, dumpSqlite } from '../../scripts/schema-dump.js';
import { CosmosError } from '../../src/errors.js';
import { Queue } from '../../src/queue/queue.js';
import { loadMigrations } from '../../src/store/migrations.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { pgQueries } from '../../src/store/postgres/queries.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { pgUrl, postgresKind, sqliteKind, storeKinds, type TestPlace } from '../support/stores.js';

async function withClient<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: pgUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

describe.each(storeKinds)('store lifecycle on $name', (kind) => {
  let place: TestPlace;
  const open: Store[] = [];

  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
    await place.cleanup();
  });

  it('refuses to start on a schema newer than the code, leaving the data alone', async () => {
    place = kind.place();
    const store = await place.open();
    const queue = new Queue(store);
    await queue.enqueue('q', 'keep me');
    if (store instanceof SqliteStore)
      store.db.prepare(`INSERT INTO schema_migrations VALUES (99, 'future', 'x', 0)`).run();
    else if (store instanceof PostgresStore)
      await store.pool.query(`INSERT INTO schema_migrations VALUES (99, 'future', 'x', 0)`);
    await store.close();
    const err = await place.open().catch((e: unknown) => e as CosmosError);
    expect(err).toBeInstanceOf(CosmosError);
    expect((err as CosmosError).code).toBe('schema_too_new');
    const known = loadMigrations(store.dialect).length;
    expect((err as CosmosError).message).toMatch(`version 99, newer than this Cosmos knows (${known})`);
    // Nothing was touched: once the future row goes (as if the newer Cosmos were back), the data is there.
    if (kind.name === 'sqlite') {
      const { Database } = await import('../../src/store/sqlite/driver.js');
      const raw = new Database((place.options as { path: string }).path);
      raw.prepare('DELETE FROM schema_migrations WHERE version = 99').run();
      raw.close();
    } else {
      await withClient((c) =>
        c.query(
          `DELETE FROM ${(place.options as { schema: string }).schema}.schema_migrations WHERE version = 99`,
        ),
      );
    }
    const reopened = await place.open();
    open.push(reopened);
    expect((await new Queue(reopened).counts('q')).pending).toBe(1);
  });
});

describe('sqlite store', () => {
  let place: TestPlace;
  afterEach(() => place.cleanup());

  it('runs in WAL mode with durable (FULL) commits by default', async () => {
    place = sqliteKind.place();
    const store = (await place.open()) as SqliteStore;
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.db.pragma('synchronous', { simple: true })).toBe(2);
    await store.close();
  });

  it('group commit: concurrent transitions share commits, and a failing one rolls back alone', async () => {
    place = sqliteKind.place();
    const store = (await place.open()) as SqliteStore;
    const queue = new Queue(store);
    await queue.enqueue('q', 'warm-up');
    const before = store.groupCommit.commits;
    const results = await Promise.allSettled([
      ...Array.from({ length: 200 }, (_, i) => queue.enqueue('q', i)),
      queue.enqueue('q', 'bad', { exclusivityKey: 'not-allowed-here' }),
    ]);
    const commits = store.groupCommit.commits - before;
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(200);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
    expect(commits).toBeLessThanOrEqual(2);
    expect((await queue.counts('q')).pending).toBe(201);
    await queue.close();
    await store.close();
  });

  it('matches the checked-in schema', async () => {
    place = sqliteKind.place();
    const store = (await place.open()) as SqliteStore;
    expect(dumpSqlite(store.db)).toBe(readFileSync('schema/sqlite.sql', 'utf8'));
    await store.close();
  });
});

describe.runIf(pgUrl)('postgres store', () => {
  let place: TestPlace;
  afterEach(() => place.cleanup());

  it('nodes starting together migrate once, under the advisory lock', async () => {
    place = postgresKind.place();
    const stores = await Promise.all([place.open(), place.open(), place.open()]);
    const rows = await withClient((c) =>
      c.query(
        `SELECT version FROM ${(place.options as { schema: string }).schema}.schema_migrations ORDER BY version`,
      ),
    );
    expect(rows.rows).toEqual(loadMigrations('postgres').map((m) => ({ version: m.version })));
    await Promise.all(stores.map((s) => s.close()));
  });

  it('matches the checked-in schema', async () => {
    place = postgresKind.place();
    const store = await place.open();
    const dump = await withClient((c) => dumpPostgres(c, (place.options as { schema: string }).schema));
    expect(dump).toBe(readFileSync('schema/postgres.sql', 'utf8'));
    await store.close();
  });

  it('wakes consumers on another node through LISTEN/NOTIFY', async () => {
    place = postgresKind.place();
    const a = await place.open();
    const b = await place.open();
    const consumerSide = new Queue(b, { pollIntervalMs: 30_000 });
    const producerSide = new Queue(a);
    const woken = consumerSide.waitForWork('remote');
    await new Promise((r) => setTimeout(r, 20));
    await producerSide.enqueue('remote', 1);
    expect(await woken).toBe(true);
    await Promise.all([consumerSide.close(), producerSide.close(), a.close(), b.close()]);
  });
});

describe.runIf(pgUrl)('postgres dequeue plan', () => {
  let place: TestPlace;
  afterEach(() => place.cleanup());

  it('walks the ready index in order even on a bulk-loaded table without statistics', async () => {
    place = postgresKind.place();
    const store = (await place.open()) as PostgresStore;
    const queue = new Queue(store);
    for (let i = 0; i < 5; i++)
      await queue.enqueueMany(
        Array.from({ length: 10_000 }, (_, j) => ({ queue: 'bulk', payload: i * 10_000 + j })),
      );
    const { rows } = await store.pool.query<{ 'QUERY PLAN': string }>(
      `EXPLAIN (COSTS OFF) ${pgQueries.dequeue}`,
      ['bulk', 500, Date.now(), 'token', null, null, false],
    );
    const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
    expect(plan).toMatch(/Index Scan using ready_pending/);
    expect(plan).not.toMatch(/Bitmap/);
    const stats = await store.pool.query<{ last_analyze: Date | null; last_autoanalyze: Date | null }>(
      `SELECT last_analyze, last_autoanalyze FROM pg_stat_user_tables WHERE relid = 'ready'::regclass`,
    );
    expect(stats.rows[0]).toEqual({ last_analyze: null, last_autoanalyze: null });
    await queue.close();
    await store.close();
  });
});

describe.runIf(pgUrl)('postgres migration 0002', () => {
  let place: TestPlace;
  afterEach(() => place.cleanup());

  it('carries messages in every state of a 0001 database over, with their leases and history', async () => {
    place = postgresKind.place();
    const { schema } = place.options as { schema: string };
    const [first] = loadMigrations('postgres');
    const t = 1_700_000_000_000;
    await withClient(async (c) => {
      await c.query(`CREATE SCHEMA ${schema}; SET search_path = ${schema}`);
      await c.query(pgQueries.createMigrationsTable);
      await c.query(first!.sql);
      await c.query(pgQueries.recordMigration, [1, first!.name, first!.checksum, t]);
      await c.query(`INSERT INTO queues VALUES ('q', 1000, 0, 3, 60000, false, false, false, $1, $1)`, [t]);
      await c.query(
        `INSERT INTO messages (queue, state, priority, payload, metadata, idempotency_key, attempts, max_attempts,
                               lease_token, lease_expires_at, visible_at, created_at, leased_at, finished_at, last_error)
         VALUES ('q', 'pending',   1, '"p"', '{"k":"v"}', 'key-1', 0, 3, NULL, NULL, $1, $1, NULL, NULL, NULL),
                ('q', 'invisible', 2, '"i"', NULL, NULL, 1, 3, NULL, NULL, $1 + 500, $1, NULL, NULL, 'Error: once'),
                ('q', 'running',   3, '"r"', NULL, NULL, 1, 3, 'tok', $1 + 1000, $1, $1, $1, NULL, NULL),
                ('q', 'running',   4, '"r2"', NULL, NULL, 2, 3, 'tok', $1 + 2000, $1, $1, $1, NULL, NULL),
                ('q', 'completed', 5, '"c"', NULL, NULL, 1, 3, NULL, NULL, $1, $1, $1, $1 + 10, NULL),
                ('q', 'errored',   6, '"e"', NULL, NULL, 3, 3, NULL, NULL, $1, $1, $1, $1 + 20, 'Error: last')`,
        [t],
      );
    });
    const store = await place.open();
    const queue = new Queue(store, {}, () => t + 100);
    const states = await Promise.all([1, 2, 3, 4, 5, 6].map((id) => queue.get(id)));
    expect(states.map((m) => m?.state)).toEqual([
      'pending',
      'invisible',
      'running',
      'running',
      'completed',
      'errored',
    ]);
    expect(states[0]).toMatchObject({
      payload: 'p',
      metadata: { k: 'v' },
      idempotencyKey: 'key-1',
      attempts: 0,
    });
    expect(states[1]).toMatchObject({ visibleAt: t + 500, lastError: 'Error: once' });
    expect(states[3]).toMatchObject({ attempts: 2, leaseExpiresAt: t + 2000, leasedAt: t });
    expect(states[5]).toMatchObject({ finishedAt: t + 20, lastError: 'Error: last', attempts: 3 });
    // The migrated lease still proves ownership; new ids continue after the old ones.
    expect(await queue.complete({ id: 3, token: 'tok' })).toBe(true);
    expect((await queue.get(3))!.state).toBe('completed');
    expect((await queue.enqueue('q', 'new')).id).toBe(7);
    expect(await queue.enqueue('q', 'again', { idempotencyKey: 'key-1' })).toMatchObject({
      id: 1,
      created: false,
    });
    expect(await queue.counts('q')).toMatchObject({
      pending: 2,
      invisible: 1,
      running: 1,
      completed: 2,
      errored: 1,
    });
    await queue.close();
    await store.close();
  });
});
