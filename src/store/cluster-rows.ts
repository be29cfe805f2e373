import type { NodeRecord } from './store.js';

/** A `nodes` row as either dialect returns it: lists are arrays (PostgreSQL) or JSON text (SQLite). */
export interface NodeDbRow {
  id: string;
  name: string;
  roles: string[] | string;
  pools: string[] | string;
  slots: number;
  host: string;
  pid: number;
  version: string;
  url: string | null;
  status: NodeRecord['status'];
  heartbeat_ms: number;
  duties: string[] | string;
  started_at: number | string;
  heartbeat_at: number | string;
}

const list = (v: string[] | string): string[] => (typeof v === 'string' ? (JSON.parse(v) as string[]) : v);

export function nodeFromDb(r: NodeDbRow): NodeRecord {
  return {
    id: r.id,
    name: r.name,
    roles: list(r.roles),
    pools: list(r.pools),
    slots: r.slots,
    host: r.host,
    pid: r.pid,
    version: r.version,
    url: r.url,
    status: r.status,
    heartbeatMs: r.heartbeat_ms,
    duties: list(r.duties),
    // PostgreSQL returns bigint as text.
    startedAt: Number(r.started_at),
    heartbeatAt: Number(r.heartbeat_at),
  };
}
