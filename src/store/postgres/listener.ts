import pg from 'pg';
import type { Wakeups } from '../../queue/wakeups.js';

/**
 * A dedicated connection that LISTENs for wake-ups. When the database goes away it reconnects with capped
 * exponential backoff, then wakes every local waiter, since notifications sent meanwhile are lost.
 */
export class Listener {
  private client: pg.Client | undefined;
  private closed = false;
  private backoffMs = 100;
  private timer: NodeJS.Timeout | undefined;
  /** Connected and listening. */
  listening = false;
  reconnects = 0;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly channel: string,
    private readonly wakeups: Wakeups,
    private readonly onError: (error: Error) => void = () => undefined,
  ) {}

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    const client = new pg.Client(this.config);
    client.on('notification', (msg) => {
      if (msg.payload) this.wakeups.notify(msg.payload);
    });
    client.on('error', (error) => {
      this.onError(error);
      this.lost(client);
    });
    client.on('end', () => this.lost(client));
    this.client = client;
    await client.connect();
    await client.query(`LISTEN ${pg.escapeIdentifier(this.channel)}`);
    this.listening = true;
    this.backoffMs = 100;
  }

  private lost(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.listening = false;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect().then(
        () => {
          this.reconnects++;
          this.wakeups.notifyAll();
        },
        (error: Error) => {
          this.onError(error);
          if (this.client) this.lost(this.client);
          else this.scheduleReconnect();
        },
      );
    }, this.backoffMs);
    this.backoffMs = Math.min(this.backoffMs * 2, 5_000);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    this.listening = false;
    if (client) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
    }
  }
}
