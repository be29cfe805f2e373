import pg from 'pg';
import type { ClusterStore, DutyLocks, NodeRecord } from '../store.js';
import { nodeFromDb, type NodeDbRow } from '../cluster-rows.js';
import { pgClusterQueries as q } from './queries.js';

/** The node registry and duty locks on PostgreSQL. */
export class PostgresClusterStore implements ClusterStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly config: pg.ClientConfig,
    private readonly schema: string,
  ) {}

  async beat(n: NodeRecord): Promise<void> {
    await this.pool.query({
      name: 'node_beat',
      text: q.beat,
      values: [
        n.id,
        n.name,
        n.roles,
        n.pools,
        n.slots,
        n.host,
        n.pid,
        n.version,
        n.url,
        n.status,
        n.heartbeatMs,
        n.duties,
        n.startedAt,
        n.heartbeatAt,
      ],
    });
  }

  async listNodes(): Promise<NodeRecord[]> {
    const { rows } = await this.pool.query<NodeDbRow>({ name: 'node_list', text: q.listNodes });
    return rows.map(nodeFromDb);
  }

  async pruneNodes(before: number): Promise<number> {
    const res = await this.pool.query({ name: 'node_prune', text: q.pruneNodes, values: [before] });
    return res.rowCount ?? 0;
  }

  dutyLocks(): DutyLocks {
    return new AdvisoryDutyLocks(this.config, this.schema);
  }
}

/**
 * Duty locks as session advisory locks on one dedicated connection. The connection is opened on first use and
 * again after it is lost; losing it loses every lock at once (the server released them with the session), so
 * the set of held duties is cleared then, and the next `hold` competes for them afresh.
 */
class AdvisoryDutyLocks implements DutyLocks {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private readonly mine = new Set<string>();
  private closed = false;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly schema: string,
  ) {}

  private key(duty: string): string {
    return `cosmos:${this.schema}:duty:${duty}`;
  }

  private connect(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      const client = new pg.Client({ ...this.config, keepAlive: true, application_name: 'cosmos-duties' });
      const lost = (): void => {
        if (this.client !== client) return;
        this.client = undefined;
        this.mine.clear();
        client.end().catch(() => undefined);
      };
      client.on('error', lost);
      client.on('end', lost);
      try {
        await client.connect();
      } catch (e) {
        // Keep an error listener: a refused connection can still emit one as it closes.
        client.removeAllListeners();
        client.on('error', () => undefined);
        await client.end().catch(() => undefined);
        throw e;
      }
      this.client = client;
      return client;
    })().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  /** One query at a time on the connection: duties ask on their own timers. */
  hold(duty: string): Promise<boolean> {
    const next = this.chain.then(() => this.tryHold(duty));
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async tryHold(duty: string): Promise<boolean> {
    if (this.closed) return false;
    if (this.mine.has(duty) && this.client) return true;
    try {
      const client = await this.connect();
      const res = await client.query<{ held: boolean }>(q.tryDuty, [this.key(duty)]);
      const held = res.rows[0]?.held === true;
      if (held && this.client === client) this.mine.add(duty);
      return held && this.client === client;
    } catch {
      return false;
    }
  }

  held(): string[] {
    return [...this.mine].sort();
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client ?? (await this.connecting?.catch(() => undefined));
    this.client = undefined;
    this.mine.clear();
    if (!client) return;
    client.removeAllListeners();
    client.on('error', () => undefined);
    // Ending the session releases its advisory locks; another node takes the duties at its next round.
    await client.end().catch(() => undefined);
  }
}
