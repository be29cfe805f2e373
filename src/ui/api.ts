/** The platform's HTTP API as the UI uses it (docs/api.md); types mirror the server's answers. */

export type Status = 'running' | 'succeeded' | 'failed' | 'canceled';

export interface ExecutionSummary {
  executionId: string;
  service?: string;
  operation?: string;
  workflow: string;
  version: string;
  status: Status;
  priority: number;
  parentId?: string;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string;
  durationMs?: number;
}

export interface ExecutionView extends ExecutionSummary {
  input: unknown;
  output?: unknown;
  error?: { code: string; message: string; details?: unknown };
  state: unknown;
  outstanding: { id: string; kind: string; rule: string; target: string; key?: string }[];
}

export interface LogLine {
  at: number;
  level: string;
  msg: string;
}

export interface Span {
  id: string;
  parentId: string | null;
  executionId: string;
  kind: 'execution' | 'rule' | 'invocation' | 'call' | 'timer' | 'signal';
  name: string;
  start: number;
  end: number | null;
  status: 'ok' | 'error' | 'running' | 'canceled';
  attributes: Record<string, unknown>;
  logs?: LogLine[];
}

export interface TraceEvent {
  kind: string;
  at: number;
  step?: number;
  rule?: string;
  data?: Record<string, unknown>;
}

export interface Trace {
  executionId: string;
  status: Status;
  events: TraceEvent[];
  children: ExecutionSummary[];
  spans: Span[];
  truncated: boolean;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface ServiceRecord {
  name: string;
  owner: { team: string; contact?: string };
  description?: string;
  calls: string[];
  secrets: string[];
  definition: Record<string, unknown>;
  deployedAt: number;
}

export interface PoolsView {
  capacity: number;
  pools: {
    pool: string;
    running: number;
    waiting: number;
    workers: number;
    runtimes: Record<string, { live: number; started: number }>;
  }[];
  functions: { name: string; version: string; pool: string; queue: string; runtime: string }[];
}

export interface QueueView {
  name: string;
  counts: Record<string, number>;
  ready: { class: string; n: number; oldest: number }[];
}

/** An answer other than 2xx, with the platform's error shape when it has one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function get<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  const body = (await res.json().catch(() => null)) as { error?: { code: string; message: string } } | null;
  if (!res.ok)
    throw new ApiError(res.status, body?.error?.code ?? 'http_error', body?.error?.message ?? res.statusText);
  return body as T;
}

export function query(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, v);
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}

export const blobUrl = (ref: string): string => `/v1/blobs/${encodeURIComponent(ref)}`;
