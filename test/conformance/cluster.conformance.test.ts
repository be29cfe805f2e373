import type { Pool } from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { viewOf } from '../../src/cluster/node-registry.js';
import type { NodeRecord, Store } from '../../src/store/store.js';
import { postgresKind, storeKinds, type TestPlace } from '../support/stores.js';

const T0 = 1_700_000_000_000;

function node(id: string, over: Partial<NodeRecord> = {}): NodeRecord {
  return {
    id,
    name: `host:${id}`,
    roles: ['worker'],
    pools: ['default', 'media'],
    slots: 4,
    host: 'host',
    pid: 42,
    version: '0.1.0',
    url: null,
    status: 'up',
    heartbeatMs: 1_000,
    duties: [],
    startedAt: T0,
    heartbeatAt: T0,
    ...over,
  };
}

/** The node registry's contract, held by SQLite and PostgreSQL alike. */
describe.each(storeKinds)('cluster store conformance on $name', (kind) => {
  let place: TestPlace;
  let store: Store;

  beforeEach(async () => {
    place = kind.place();
    store = await place.open();
  });
  afterEach(async () => {
    await store.close();
    await place.cleanup();
  });

  it('a beat inserts the row, later beats move status, duties, url and time but keep identity', async () => {
    await store.cluster.beat(node('a'));
    await store.cluster.beat(node('b', { roles: ['api', 'engine'], pools: [], slots: 0, startedAt: T0 + 1 }));
    await store.cluster.beat(
      node('a', {
        name: 'renamed',
        status: 'draining',
        duties: ['queue-maintenance'],
        url: 'http://127.0.0.1:7070',
        heartbeatAt: T0 + 5_000,
      }),
    );
    const rows = await store.cluster.listNodes();
    expect(rows.map((r) => r.id)).toEqual(['a', 'b']);
    expect(rows[0]).toEqual(
      node('a', {
        status: 'draining',
        duties: ['queue-maintenance'],
        url: 'http://127.0.0.1:7070',
        heartbeatAt: T0 + 5_000,
      }),
    );
    expect(rows[1]!.roles).toEqual(['api', 'engine']);
    expect(rows[1]!.pools).toEqual([]);
  });

  it('prunes rows whose last beat is older than the cut-off, and only those', async () => {
    await store.cluster.beat(node('old', { heartbeatAt: T0 }));
    await store.cluster.beat(node('new', { heartbeatAt: T0 + 10_000 }));
    expect(await store.cluster.pruneNodes(T0 + 5_000)).toBe(1);
    expect((await store.cluster.listNodes()).map((r) => r.id)).toEqual(['new']);
  });

  it('a node that missed three beats shows as lost; a stopped one stays stopped', () => {
    expect(viewOf(node('a', { heartbeatAt: T0 }), T0 + 3_000).status).toBe('up');
    expect(viewOf(node('a', { heartbeatAt: T0 }), T0 + 3_001).status).toBe('lost');
    expect(viewOf(node('a', { status: 'stopped', heartbeatAt: T0 }), T0 + 60_000).status).toBe('stopped');
    expect(viewOf(node('a', { heartbeatAt: T0 }), T0 + 2_500).ageMs).toBe(2_500);
  });

  it('duty locks: held until closed, then free for another holder', async () => {
    const a = store.cluster.dutyLocks();
    expect(await a.hold('queue-maintenance')).toBe(true);
    expect(await a.hold('queue-maintenance')).toBe(true);
    expect(a.held()).toEqual(['queue-maintenance']);
    await a.close();
    expect(a.held()).toEqual([]);
    const b = store.cluster.dutyLocks();
    expect(await b.hold('queue-maintenance')).toBe(true);
    await b.close();
  });
});

describe.runIf(storeKinds.includes(postgresKind))('duty locks across nodes on postgres', () => {
  let place: TestPlace;
  let one: Store;
  let two: Store;

  beforeEach(async () => {
    place = postgresKind.place();
    one = await place.open();
    two = await place.open();
  });
  afterEach(async () => {
    await one.close();
    await two.close();
    await place.cleanup();
  });

  it('one holder per duty; the lock moves when its holder goes, and duties are independent', async () => {
    const a = one.cluster.dutyLocks();
    const b = two.cluster.dutyLocks();
    expect(await a.hold('queue-maintenance')).toBe(true);
    expect(await b.hold('queue-maintenance')).toBe(false);
    expect(await b.hold('workflow-recovery')).toBe(true);
    expect(await a.hold('workflow-recovery')).toBe(false);
    expect(b.held()).toEqual(['workflow-recovery']);
    await a.close();
    expect(await b.hold('queue-maintenance')).toBe(true);
    expect(b.held()).toEqual(['queue-maintenance', 'workflow-recovery']);
    await b.close();
  });

  it('a holder whose session dies loses its duties, and takes them again once it can', async () => {
    const a = one.cluster.dutyLocks();
    const b = two.cluster.dutyLocks();
    expect(await a.hold('queue-maintenance')).toBe(true);
    // What a crash or a database restart does to the holder: the server ends its session.
    const admin = await place.open();
    await (admin as unknown as { pool: Pool }).pool.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'cosmos-duties' AND pid <> pg_backend_pid() AND query LIKE '%pg_try_advisory_lock%'",
    );
    await admin.close();
    await expect.poll(() => a.held(), { timeout: 5_000 }).toEqual([]);
    expect(await b.hold('queue-maintenance')).toBe(true);
    expect(await a.hold('queue-maintenance')).toBe(false);
    await b.close();
    expect(await a.hold('queue-maintenance')).toBe(true);
    await a.close();
  });
});
