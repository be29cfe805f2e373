import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from '../observability/logger.js';
import type { ClusterStore, NodeRecord } from '../store/store.js';

/** How a node describes itself to the registry. */
export interface NodeIdentity {
  name?: string;
  roles: string[];
  pools: string[];
  slots: number;
  url: string | null;
  version: string;
}

/** A registry row as shown to people: `lost` when the node stopped beating without saying goodbye. */
export type NodeView = Omit<NodeRecord, 'status'> & { status: NodeRecord['status'] | 'lost'; ageMs: number };

/** A node is lost once it missed this many heartbeats. */
export const LOST_AFTER_BEATS = 3;

export function viewOf(n: NodeRecord, now: number): NodeView {
  const ageMs = Math.max(0, now - n.heartbeatAt);
  const lost = n.status !== 'stopped' && ageMs > LOST_AFTER_BEATS * n.heartbeatMs;
  return { ...n, status: lost ? 'lost' : n.status, ageMs };
}

/**
 * This node's row in the registry, written on start and every `heartbeatMs`. A failed beat (database away) is
 * logged once and retried at the next beat; nothing waits on it.
 */
export class NodeHeartbeat {
  readonly record: NodeRecord;
  private timer: NodeJS.Timeout | undefined;
  private failing = false;

  constructor(
    private readonly store: ClusterStore,
    identity: NodeIdentity,
    heartbeatMs: number,
    private readonly duties: () => string[],
    private readonly log: Logger,
    private readonly clock: () => number = Date.now,
  ) {
    const now = clock();
    this.record = {
      id: randomUUID(),
      name: identity.name ?? `${hostname()}:${process.pid}`,
      roles: identity.roles,
      pools: identity.pools,
      slots: identity.slots,
      host: hostname(),
      pid: process.pid,
      version: identity.version,
      url: identity.url,
      status: 'up',
      heartbeatMs,
      duties: [],
      startedAt: now,
      heartbeatAt: now,
    };
  }

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat(), this.record.heartbeatMs);
    this.timer.unref();
  }

  /** Marks the node as draining (or stopped) at once, instead of at the next beat. */
  async setStatus(status: NodeRecord['status']): Promise<void> {
    this.record.status = status;
    await this.beat();
  }

  setUrl(url: string): void {
    this.record.url = url;
  }

  private async beat(): Promise<void> {
    this.record.heartbeatAt = this.clock();
    this.record.duties = this.duties();
    try {
      await this.store.beat(this.record);
      if (this.failing) this.log.info({ node: this.record.name }, 'heartbeat written again');
      this.failing = false;
    } catch (error) {
      if (!this.failing) this.log.warn({ err: error, node: this.record.name }, 'heartbeat failed; retrying');
      this.failing = true;
    }
  }

  /** Stops beating and records the node as stopped. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.setStatus('stopped');
  }
}
