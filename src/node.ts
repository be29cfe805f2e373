import { dirname, join } from 'node:path';
import { Duties } from './cluster/duties.js';
import { NodeHeartbeat, viewOf } from './cluster/node-registry.js';
import { COSMOS_VERSION } from './version.js';
import { ServiceCatalog } from './api/catalog.js';
import { loadServices } from './api/loader.js';
import { LiveFeed } from './api/live.js';
import { buildServer } from './api/server.js';
import { resolveOptions, type CosmosOptions, type CosmosOptionsInput, type NodeRole } from './config.js';
import { FunctionRuntime } from './functions/runtime.js';
import { createLogger, type Logger } from './observability/logger.js';
import { NodeMetrics } from './observability/metrics.js';
import { OtlpTraceExport } from './observability/otlp.js';
import { Queue } from './queue/queue.js';
import { openBlobStore } from './store/blobs/open-blobs.js';
import { openStore } from './store/open.js';
import type { Store } from './store/store.js';
import { idsOf, SEARCH_INDEX_EVERY_MS, WorkflowEngine } from './workflow/engine.js';

/** A running Cosmos node: store, queue (with maintenance), function runtime, workflow engine, HTTP edge. */
export interface CosmosNode {
  readonly options: CosmosOptions;
  readonly store: Store;
  readonly queue: Queue;
  readonly runtime: FunctionRuntime;
  readonly engine: WorkflowEngine;
  readonly catalog: ServiceCatalog;
  readonly logger: Logger;
  /** Where the HTTP edge listens, e.g. http://127.0.0.1:7070; empty for a node without the api role. */
  readonly url: string;
  /** This node's registry row (id, roles, status, duties held). */
  readonly heartbeat: NodeHeartbeat;
  /** Loads the services folder again and deploys what changed (new versions; running executions stay pinned). */
  reload(): Promise<string[]>;
  /**
   * Graceful stop (SIGTERM): marked draining in the registry and on /readyz, stops taking work, lets running
   * functions finish (up to `cluster.drainTimeoutMs`, then gives them back), hands its duties on, and closes.
   */
  drain(): Promise<void>;
  /** Stops at once: what runs here is given back or left to its lease. */
  close(): Promise<void>;
}

/** How long a node without activity keeps its registry row: stopped and lost nodes stay visible this long. */
const NODE_ROW_RETENTION_MS = 60 * 60 * 1000;

export async function startNode(input: CosmosOptionsInput = {}): Promise<CosmosNode> {
  const options = resolveOptions(input);
  const logger = createLogger(options.logLevel, options.redact.paths);
  const store = await openStore(options.store);
  const closers: (() => Promise<void>)[] = [() => store.close()];
  const closeAll = async (): Promise<void> => {
    for (const c of closers.splice(0).reverse()) await c();
  };
  try {
    const dataDir =
      options.runtime.dataDir ??
      (options.store.kind === 'sqlite' && options.store.path !== ':memory:'
        ? dirname(options.store.path)
        : '.cosmos');
    const has = (role: NodeRole): boolean => options.roles.includes(role);
    const queue = new Queue(store, options.queue);
    closers.push(() => queue.close());
    const blobs = await openBlobStore(store, { dir: join(dataDir, 'blobs') });
    const runtime = new FunctionRuntime(queue, {
      logger: logger.child({ component: 'functions' }),
      ...(options.redact.line && { redactLine: options.redact.line }),
      bundleDir: join(dataDir, 'bundles'),
      workDir: join(dataDir, 'work'),
      blobs,
      ...(options.runtime.capacity !== undefined && { capacity: options.runtime.capacity }),
      ...(options.runtime.leaseMs !== undefined && { leaseMs: options.runtime.leaseMs }),
      // A node without the worker role records invocations for the workers and runs none itself.
      servePools: has('worker') ? options.runtime.pools : [],
    });
    const engine: WorkflowEngine = new WorkflowEngine(queue, runtime, {
      logger: logger.child({ component: 'workflow' }),
      ...options.engine,
      // Recovery of executions whose owner died is a cluster duty (below), run by one node at a time.
      sweep: false,
      // The catalog is made next; the engine asks it only once it runs.
      callPolicy: (from, service, operation, input) => catalog.callPolicy(from, service, operation, input),
    });
    const catalog = new ServiceCatalog(engine, runtime, store.services);
    const metrics = new NodeMetrics(queue, runtime, store.workflow);
    engine.onFinished((x) => metrics.executionFinished(x));
    // One line per finished execution: failures at warn, the rest at debug (COSMOS_LOG_LEVEL=debug shows them).
    engine.onFinished((x) => {
      const fields = {
        ...idsOf(x),
        status: x.status,
        ...(x.finishedAt !== undefined && { durationMs: x.finishedAt - x.createdAt }),
        ...(x.error && { err: { code: x.error.code, message: x.error.message } }),
      };
      if (x.status === 'failed') logger.warn(fields, 'execution failed');
      else logger.debug(fields, `execution ${x.status}`);
    });
    if (options.otlp) {
      const otlp = new OtlpTraceExport(store, options.otlp, logger);
      engine.onFinished((x) => otlp.finished(x));
      closers.push(() => otlp.close());
    }
    const deploy = async (): Promise<string[]> => {
      if (!options.servicesDir) return [];
      const { services, files } = await loadServices(options.servicesDir);
      await catalog.deploy(services);
      return files;
    };
    const files = await deploy();
    let draining = false;
    let drainMs: number | undefined;
    await runtime.start();
    closers.push(() => runtime.stop(drainMs === undefined ? {} : { drainMs }));
    if (has('engine')) {
      await engine.start();
      closers.push(() => engine.stop());
    } else await engine.prepare();
    const duties = new Duties(
      store.cluster.dutyLocks(),
      [
        {
          // Delayed messages and timers coming due, expired leases, and (once a minute) old finished messages.
          name: 'queue-maintenance',
          everyMs: options.queue.maintenanceIntervalMs,
          run: () => queue.maintenanceRound(),
        },
        {
          name: 'workflow-recovery',
          everyMs: Math.max(100, Math.floor((options.engine.leaseMs ?? 30_000) / 3)),
          run: () => engine.recoverLapsed(),
        },
        {
          // Search rows that commits appended, moved into the trigram index off the commit path.
          name: 'search-index',
          everyMs: SEARCH_INDEX_EVERY_MS,
          run: () => engine.indexSearch(),
        },
        {
          name: 'node-registry',
          everyMs: 60_000,
          run: () => store.cluster.pruneNodes(Date.now() - NODE_ROW_RETENTION_MS),
        },
      ],
      logger.child({ component: 'cluster' }),
    );
    const heartbeat = new NodeHeartbeat(
      store.cluster,
      {
        ...(options.cluster.name !== undefined && { name: options.cluster.name }),
        roles: options.roles,
        pools: has('worker')
          ? (options.runtime.pools ??
            [...new Set(runtime.registry.list().map((r) => r.def.options.pool))].sort())
          : [],
        slots: has('worker') ? runtime.slotUse().capacity : 0,
        url: null,
        version: COSMOS_VERSION,
      },
      options.cluster.heartbeatMs,
      () => duties.held(),
      logger.child({ component: 'cluster' }),
    );
    duties.start();
    closers.push(() => duties.stop());
    const live = new LiveFeed();
    engine.onCommitted((x) => live.committed(x));
    closers.push(() => Promise.resolve(live.close()));
    let url = '';
    if (has('api')) {
      const app = await buildServer({
        store,
        queue,
        logger,
        engine,
        catalog,
        metrics,
        blobs,
        runtime,
        live,
        cluster: {
          draining: () => draining,
          nodes: async () => (await store.cluster.listNodes()).map((n) => viewOf(n, Date.now())),
        },
      });
      await app.listen({ host: options.server.host, port: options.server.port });
      // Closed before anything else: in-flight requests finish, new connections are refused.
      closers.push(() => app.close());
      const address = app.server.address();
      const port = typeof address === 'object' && address ? address.port : options.server.port;
      url = `http://${options.server.host.includes(':') ? `[${options.server.host}]` : options.server.host}:${port}`;
      heartbeat.setUrl(url);
    }
    await heartbeat.start();
    // Last closer to run before the store closes: the row says stopped.
    closers.splice(1, 0, () => heartbeat.stop());
    logger.debug({ files }, 'services loaded');
    let closing: Promise<void> | undefined;
    return {
      heartbeat,
      drain: () => {
        if (closing) return closing;
        draining = true;
        drainMs = options.cluster.drainTimeoutMs;
        return (closing = heartbeat.setStatus('draining').then(closeAll));
      },
      options,
      store,
      queue,
      runtime,
      engine,
      catalog,
      logger,
      url,
      reload: deploy,
      close: () => (closing ??= closeAll()),
    };
  } catch (error) {
    await closeAll().catch(() => undefined);
    throw error;
  }
}
