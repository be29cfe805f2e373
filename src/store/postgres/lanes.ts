import type { Pool, PoolClient, QueryConfig, QueryResult, QueryResultRow } from 'pg';

interface Lane {
  client: Promise<PoolClient> | undefined;
  pending: number;
  /** The lane's last statement: a connection runs one at a time, so each waits for the one before. */
  tail: Promise<unknown>;
}

/**
 * Connections held for the latency-critical statements (workflow step commits). Checking a connection out
 * of pg.Pool and back costs about 0.25 ms per statement on the reference machine, close to a whole commit;
 * held connections skip it. A lane whose connection broke gets a fresh one on its next statement.
 */
export class Lanes {
  private readonly lanes: Lane[];
  private closed = false;

  constructor(
    private readonly pool: Pool,
    count: number,
  ) {
    this.lanes = Array.from({ length: count }, () => ({
      client: undefined,
      pending: 0,
      tail: Promise.resolve(),
    }));
  }

  query<R extends QueryResultRow>(config: QueryConfig): Promise<QueryResult<R>> {
    const lane = this.lanes.reduce((a, b) => (b.pending < a.pending ? b : a));
    lane.pending++;
    const run = lane.tail.then(() => this.run<R>(lane, config));
    lane.tail = run.catch(() => undefined);
    return run;
  }

  private async run<R extends QueryResultRow>(lane: Lane, config: QueryConfig): Promise<QueryResult<R>> {
    try {
      const client = await this.clientOf(lane);
      try {
        return await client.query<R>(config);
      } catch (e) {
        // SQL errors carry a SQLSTATE and leave the connection usable; anything else may not have.
        if ((e as { code?: unknown }).code === undefined) this.drop(lane, client, e);
        throw e;
      }
    } finally {
      lane.pending--;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.lanes.map(async (lane) => {
        const c = await lane.client?.catch(() => undefined);
        lane.client = undefined;
        c?.release();
      }),
    );
  }

  private clientOf(lane: Lane): Promise<PoolClient> {
    if (this.closed) return Promise.reject(new Error('the store is closed'));
    if (!lane.client) {
      const p = this.pool.connect().then((c) => {
        c.on('error', (e) => this.drop(lane, c, e));
        return c;
      });
      p.catch(() => {
        if (lane.client === p) lane.client = undefined;
      });
      lane.client = p;
    }
    return lane.client;
  }

  private drop(lane: Lane, client: PoolClient, e: unknown): void {
    void lane.client?.then((c) => {
      if (c !== client) return;
      lane.client = undefined;
      client.release(e instanceof Error ? e : true);
    });
  }
}
