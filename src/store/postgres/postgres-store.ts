import pg from 'pg';
import type { PostgresStoreOptions } from '../../config.js';
import { CosmosError } from '../../errors.js';
import { Wakeups } from '../../queue/wakeups.js';
import { loadMigrations, planMigrations, type AppliedMigration } from '../migrations.js';
import type { Store } from '../store.js';
import { Listener } from './listener.js';
import { PostgresClusterStore } from './postgres-cluster.js';
import { PostgresQueueStore } from './postgres-queue.js';
import { PostgresServiceStore } from './postgres-services.js';
import { PostgresWorkflowStore } from './postgres-workflow.js';
import { pgQueries as q } from './queries.js';

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * The distributed store: a pooled `pg` connection set whose search_path is the installation's schema,
 * plus one listening connection for wake-ups.
 */
export class PostgresStore implements Store {
  readonly dialect = 'postgres';
  readonly queue: PostgresQueueStore;
  readonly workflow: PostgresWorkflowStore;
  readonly services: PostgresServiceStore;
  readonly cluster: PostgresClusterStore;
  private closed = false;

  private constructor(
    readonly pool: pg.Pool,
    readonly schema: string,
    readonly wakeups: Wakeups,
    private readonly listener: Listener | undefined,
    config: pg.ClientConfig,
    private readonly trips: { n: number },
  ) {
    this.queue = new PostgresQueueStore(pool, channelFor(schema), this.wakeups);
    this.workflow = new PostgresWorkflowStore(pool, this.queue, channelFor(schema));
    this.services = new PostgresServiceStore(pool);
    this.cluster = new PostgresClusterStore(pool, config, schema);
  }

  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const schema = options.schema ?? 'cosmos';
    if (!SCHEMA_NAME.test(schema))
      throw new CosmosError('config_invalid', `schema name "${schema}" must match ${SCHEMA_NAME.source}`);
    const config: pg.ClientConfig = {
      connectionString: options.url,
      // Every statement of the store is an ordered index walk or a point lookup. Without table statistics
      // (a fresh bulk load, or a server with autovacuum off) the planner turns the dequeue into a bitmap scan
      // plus a sort of the whole backlog: 350 ms instead of 1 ms at 1M pending. Bitmap scans never help
      // these statements, so they are off for the store's own connections (the text search, which reads a
      // trigram index, turns them on for itself: see execution_search_ids).
      options: `-c search_path=${schema} -c enable_bitmapscan=off`,
      application_name: 'cosmos',
    };
    await migrate(config, schema);
    const pool = new pg.Pool({ ...config, max: options.poolSize ?? 10 });
    const trips = { n: 0 };
    // An idle client losing its connection must not crash the process; the next checkout reconnects.
    pool.on('error', () => undefined);
    // Nor one that is checked out, between two statements (a transaction waiting on other work) when the
    // server goes away: the statement in flight, or the next one, fails and the caller handles that; the
    // client's own 'error' event would otherwise be unhandled and end the process. pg-pool discards such a
    // client when it comes back (it is no longer queryable).
    pool.on('connect', (client) => {
      client.on('error', () => undefined);
      // Every statement sent on a pooled connection is one round trip: counted for `roundTrips`.
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as { query: unknown }).query = (...args: unknown[]) => {
        trips.n++;
        return query(...args);
      };
    });
    const wakeups = new Wakeups();
    let listener: Listener | undefined;
    if (options.listen !== false) {
      listener = new Listener(config, channelFor(schema), wakeups);
      try {
        await listener.start();
      } catch (error) {
        await pool.end();
        throw error;
      }
    }
    return new PostgresStore(pool, schema, wakeups, listener, config, trips);
  }

  /**
   * Statements this store has sent on its pooled connections since it opened: the database round trips of
   * the node's work (the listening and duty-lock connections, which carry no per-invocation work, are not
   * counted). `npm run bench -- scaleout` reports them per invocation.
   */
  get roundTrips(): number {
    return this.trips.n;
  }

  async schemaVersion(): Promise<number> {
    const res = await this.pool.query<{ v: number }>(q.schemaVersion);
    return Number(res.rows[0]!.v);
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.listener?.close();
    await this.workflow.close();
    await this.pool.end();
  }
}

function channelFor(schema: string): string {
  return `cosmos_${schema}`;
}

/**
 * Applies pending migrations under a session advisory lock keyed by the schema, so nodes starting together
 * migrate once. Each migration commits with its record.
 */
async function migrate(config: pg.ClientConfig, schema: string): Promise<void> {
  const client = new pg.Client(config);
  // A server going away mid-migration fails the statement under way (and the start); the event must not
  // also end the process.
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [`cosmos:migrate:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(schema)}`);
    await client.query(q.createMigrationsTable);
    const applied = (await client.query<AppliedMigration>(q.appliedMigrations)).rows;
    for (const m of planMigrations(applied, loadMigrations('postgres'))) {
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query(q.recordMigration, [m.version, m.name, m.checksum, Date.now()]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw new CosmosError(
          'migration_failed',
          `migration ${m.version} (${m.name}) failed: ${String(error)}`,
          {
            version: m.version,
          },
        );
      }
    }
  } finally {
    await client
      .query('SELECT pg_advisory_unlock(hashtext($1))', [`cosmos:migrate:${schema}`])
      .catch(() => undefined);
    await client.end();
  }
}
