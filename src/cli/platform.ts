import { join, resolve } from 'node:path';
import { executionPage, traceAndChildren } from '../api/listing.js';
import { viewOf, type NodeView } from '../cluster/node-registry.js';
import type { Span } from '../observability/spans.js';
import { executionView } from '../api/views.js';
import type { StoreOptions } from '../config.js';
import { readEnv } from '../env.js';
import { CosmosError, ERROR_CODES, type ErrorCode } from '../errors.js';
import { openStore } from '../store/open.js';
import type { Store } from '../store/store.js';
import type { Execution, TraceEvent } from '../workflow/execution.js';

/** Where a command finds platform state: the embedded store, PostgreSQL, or a running server. */
/** An execution's trace as the CLI shows it: its events, its children, the spans of its whole tree. */
export interface TraceView {
  events: TraceEvent[];
  children: ExecutionView[];
  spans?: Span[];
}

export interface TargetOptions {
  data?: string;
  db?: string;
  schema?: string;
  url?: string;
}

export interface ListFilter {
  service?: string;
  status?: string;
  q?: string;
  limit?: number;
  cursor?: string;
}

export type ExecutionView = Record<string, unknown> & { executionId: string; status: string };

/** What the inspecting commands read, the same whichever target they read it from. */
export interface Platform {
  list(filter: ListFilter): Promise<{ items: ExecutionView[]; nextCursor: string | null }>;
  get(id: string): Promise<ExecutionView>;
  trace(id: string): Promise<TraceView>;
  /** The node registry. */
  nodes(): Promise<NodeView[]>;
  close(): Promise<void>;
}

const env = readEnv();

/** --data <dir> (embedded SQLite) or --db <url> (PostgreSQL): where platform state lives. */
export function storeFrom(opts: { data?: string; db?: string; schema?: string }): StoreOptions {
  if (opts.db) return { kind: 'postgres', url: opts.db, ...(opts.schema && { schema: opts.schema }) };
  return { kind: 'sqlite', path: join(resolve(opts.data ?? env.dataDir ?? '.cosmos'), 'cosmos.db') };
}

/** The target a command names; with none, the embedded store in ./.cosmos. */
export async function openPlatform(o: TargetOptions): Promise<Platform> {
  const given = [o.data, o.db, o.url].filter((v) => v !== undefined).length;
  if (given > 1) throw new CosmosError('invalid_argument', 'give one of --data, --db or --url');
  if (o.url) return new HttpPlatform(o.url);
  return new StorePlatform(await openStore(storeFrom(o)));
}

/** A running server's API. */
export class HttpPlatform implements Platform {
  readonly base: string;

  constructor(url: string) {
    this.base = url.replace(/\/+$/, '');
  }

  async request<T>(path: string, init: RequestInit = {}): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, init);
    } catch (e) {
      throw new CosmosError('platform_error', `no Cosmos server answers at ${this.base} (${String(e)})`, {
        url: this.base,
      });
    }
    const body = (await res.json().catch(() => ({}))) as T & {
      error?: { code: string; message: string; details?: Record<string, unknown> };
    };
    if (!res.ok) {
      const e = body.error;
      const code = (e && e.code in ERROR_CODES ? e.code : 'platform_error') as ErrorCode;
      throw new CosmosError(code, e?.message ?? `HTTP ${res.status}`, e?.details);
    }
    return body;
  }

  list(f: ListFilter): Promise<{ items: ExecutionView[]; nextCursor: string | null }> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(f)) if (v !== undefined) qs.set(k, String(v));
    return this.request(`/v1/executions?${qs.toString()}`);
  }

  get(id: string): Promise<ExecutionView> {
    return this.request(`/v1/executions/${encodeURIComponent(id)}`);
  }

  trace(id: string): Promise<TraceView> {
    return this.request(`/v1/executions/${encodeURIComponent(id)}/trace`);
  }

  async nodes(): Promise<NodeView[]> {
    return (await this.request<{ nodes: NodeView[] }>('/v1/nodes')).nodes;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The store itself, read without a server (the same views the API answers with). */
export class StorePlatform implements Platform {
  constructor(private readonly store: Store) {}

  async list(f: ListFilter): Promise<{ items: ExecutionView[]; nextCursor: string | null }> {
    const page = await executionPage(this.store, { ...f, limit: f.limit ?? 50 });
    return page as { items: ExecutionView[]; nextCursor: string | null };
  }

  async get(id: string): Promise<ExecutionView> {
    const [row] = await this.store.workflow.getExecutions([id]);
    if (!row) throw new CosmosError('execution_not_found', `no execution "${id}"`, { id });
    return executionView(JSON.parse(row.doc) as Execution) as ExecutionView;
  }

  async trace(id: string): Promise<TraceView> {
    const [row] = await this.store.workflow.getExecutions([id]);
    if (!row) throw new CosmosError('execution_not_found', `no execution "${id}"`, { id });
    const doc = JSON.parse(row.doc) as Execution;
    const t = await traceAndChildren(this.store, doc);
    return { events: t.events, children: t.children as ExecutionView[], spans: t.spans };
  }

  async nodes(): Promise<NodeView[]> {
    const now = Date.now();
    return (await this.store.cluster.listNodes()).map((n) => viewOf(n, now));
  }

  close(): Promise<void> {
    return this.store.close();
  }
}
