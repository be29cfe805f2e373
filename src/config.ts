import type { OtlpOptions } from './observability/otlp.js';
import type { QueueConfig } from './types.js';

/**
 * All configuration is one typed object with documented defaults. Environment variables are read only in
 * env.ts and turned into a partial of this object.
 */

export interface SqliteStoreOptions {
  kind: 'sqlite';
  /** Database file, or ':memory:'. `cosmos dev` uses `<data>/cosmos.db`. */
  path: string;
  /**
   * 'full' (default) fsyncs every commit: a committed transition survives power loss. Throughput comes from
   * group commit instead of weaker durability.
   */
  synchronous?: 'full' | 'normal';
  /** How long a writer waits for another process's write lock. Default 5000. */
  busyTimeoutMs?: number;
  /** Most operations one group commit carries. Default 1000. */
  maxGroupSize?: number;
}

export interface PostgresStoreOptions {
  kind: 'postgres';
  /** postgres://user@host:port/db */
  url: string;
  /** Every table lives in this schema; tests use one schema each. Default 'cosmos'. */
  schema?: string;
  /** Connections in the pool. Default 10. */
  poolSize?: number;
  /** Listen for NOTIFY wake-ups on a dedicated connection. Default true. */
  listen?: boolean;
}

export type StoreOptions = SqliteStoreOptions | PostgresStoreOptions;

export interface QueueOptions {
  /** Defaults for auto-created queues. */
  defaults: QueueConfig;
  /** Largest serialized payload accepted, in bytes; larger data belongs in blobs. Default 256 KiB. */
  maxPayloadBytes: number;
  /** A consumer re-checks this often even without a wake-up (a fallback, not the normal path). */
  pollIntervalMs: number;
  /** How often the maintenance loop promotes delayed messages, reaps expired leases and collects garbage. */
  maintenanceIntervalMs: number;
  /** Rows deleted per garbage-collection statement. */
  gcBatchSize: number;
}

export const DEFAULT_QUEUE_CONFIG: QueueConfig = {
  leaseMs: 30_000,
  delayMs: 0,
  maxAttempts: 3,
  retentionMs: 24 * 60 * 60 * 1000,
  enqueuePaused: false,
  dequeuePaused: false,
  exclusive: false,
};

export const DEFAULT_QUEUE_OPTIONS: QueueOptions = {
  defaults: DEFAULT_QUEUE_CONFIG,
  maxPayloadBytes: 256 * 1024,
  pollIntervalMs: 2_000,
  maintenanceIntervalMs: 1_000,
  gcBatchSize: 5_000,
};

export interface ServerOptions {
  /** Default 127.0.0.1: nothing listens beyond loopback unless asked. */
  host: string;
  /** Default 7070; 0 picks a free port. */
  port: number;
}

export const DEFAULT_SERVER_OPTIONS: ServerOptions = { host: '127.0.0.1', port: 7070 };

export interface NodeRuntimeOptions {
  /** Slots for functions on this node. Default: its cores. */
  capacity?: number;
  /** Pools whose functions a worker node runs (`cosmos worker --pools`). Default: every pool. */
  pools?: string[];
  /** Lease of a fetched invocation, renewed while it runs. Default 30 s; a dead worker's work moves after it. */
  leaseMs?: number;
  /**
   * Where function bundles, blobs (embedded store) and work files live. Default: beside the SQLite file, or
   * `./.cosmos` for PostgreSQL.
   */
  dataDir?: string;
}

/**
 * What a node does. `api`: the HTTP edge (submissions, reads, the UI). `engine`: applies workflow events (rule
 * evaluation). `worker`: runs functions. `cosmos dev` runs all three; in distributed mode `cosmos start` runs
 * api and engine, and `cosmos worker` runs worker, on as many machines as needed.
 */
export type NodeRole = 'api' | 'engine' | 'worker';
export const NODE_ROLES: readonly NodeRole[] = ['api', 'engine', 'worker'];

export interface ClusterOptions {
  /** The node's name in the registry. Default: host and pid. */
  name?: string;
  /** How often the node writes its registry row; it counts as lost after three missed beats. Default 2 s. */
  heartbeatMs: number;
  /** On SIGTERM, how long running functions get to finish before they are given back. Default 30 s. */
  drainTimeoutMs: number;
}

export const DEFAULT_CLUSTER_OPTIONS: ClusterOptions = { heartbeatMs: 2_000, drainTimeoutMs: 30_000 };

export interface EngineNodeOptions {
  /** Lease of workflow events; an engine node that dies hands its executions on after it. Default 30 s. */
  leaseMs?: number;
  /** Longest wait for events without a wake-up. Default 1 s. */
  pollMs?: number;
}

export interface CosmosOptions {
  /** Default: all three roles. */
  roles: NodeRole[];
  cluster: ClusterOptions;
  engine: EngineNodeOptions;
  store: StoreOptions;
  queue: QueueOptions;
  server: ServerOptions;
  /** pino level. Default 'info'. */
  logLevel: string;
  /** Folder of services to deploy (`<name>/service.ts` each). Default: none, the platform routes only. */
  servicesDir: string | undefined;
  runtime: NodeRuntimeOptions;
  /** Trace export over OTLP/HTTP. Default: none (`cosmos dev`/`start` take it from the OTEL_* variables). */
  otlp: OtlpOptions | undefined;
  /** What never reaches logs and traces beyond the built-in credential paths. Default: nothing more. */
  redact: RedactOptions;
}

/**
 * Redaction hooks (SPEC §10: secrets never written to logs or traces); the security layer fills them in.
 * `paths` are pino paths removed from the node's log lines; `line` rewrites each line a function prints
 * before it is stored in the trace.
 */
export interface RedactOptions {
  paths?: string[];
  line?: (text: string) => string;
}

/** Queue options as callers give them: any subset, including a subset of the queue defaults. */
export type QueueOptionsInput = Partial<Omit<QueueOptions, 'defaults'>> & { defaults?: Partial<QueueConfig> };

export function resolveQueueOptions(input: QueueOptionsInput = {}): QueueOptions {
  return { ...DEFAULT_QUEUE_OPTIONS, ...input, defaults: { ...DEFAULT_QUEUE_CONFIG, ...input.defaults } };
}

export interface CosmosOptionsInput {
  roles?: NodeRole[];
  cluster?: Partial<ClusterOptions>;
  engine?: EngineNodeOptions;
  store?: StoreOptions;
  queue?: QueueOptionsInput;
  server?: Partial<ServerOptions>;
  logLevel?: string;
  servicesDir?: string;
  runtime?: NodeRuntimeOptions;
  otlp?: OtlpOptions;
  redact?: RedactOptions;
}

export function resolveOptions(input: CosmosOptionsInput = {}): CosmosOptions {
  return {
    roles: input.roles ?? [...NODE_ROLES],
    cluster: { ...DEFAULT_CLUSTER_OPTIONS, ...input.cluster },
    engine: { ...input.engine },
    store: input.store ?? { kind: 'sqlite', path: '.cosmos/cosmos.db' },
    queue: resolveQueueOptions(input.queue),
    server: { ...DEFAULT_SERVER_OPTIONS, ...input.server },
    logLevel: input.logLevel ?? 'info',
    servicesDir: input.servicesDir,
    runtime: { ...input.runtime },
    otlp: input.otlp,
    redact: input.redact ?? {},
  };
}
