import Fastify, { LogController, type FastifyBaseLogger } from 'fastify';
import type { Logger } from 'pino';
import { CosmosError } from '../errors.js';
import type { NodeMetrics } from '../observability/metrics.js';
import type { Queue } from '../queue/queue.js';
import type { BlobStore } from '../store/blobs/blob-store.js';
import type { Store } from '../store/store.js';
import type { WorkflowEngine } from '../workflow/engine.js';
import type { ServiceCatalog } from './catalog.js';
import { errorHandler, notFoundHandler } from './errors.js';
import { openApiDocument } from './openapi.js';
import { blobRoutes } from './routes/blobs.js';
import { executionRoutes } from './routes/executions.js';
import { uiRoutes } from './routes/ui.js';
import { liveRoutes, type LiveFeed } from './live.js';
import type { FunctionRuntime } from '../functions/runtime.js';
import type { NodeView } from '../cluster/node-registry.js';
import { MAX_WAIT_SECONDS, submitRoutes } from './routes/submit.js';

export interface ServerDeps {
  store: Store;
  queue: Queue;
  logger: Logger;
  engine: WorkflowEngine;
  catalog: ServiceCatalog;
  metrics: NodeMetrics;
  blobs: BlobStore;
  runtime: FunctionRuntime;
  live: LiveFeed;
  cluster: {
    /** True once the node is draining: /readyz answers 503 so balancers stop sending it requests. */
    draining: () => boolean;
    nodes: () => Promise<NodeView[]>;
  };
}

function httpLogger(logger: Logger): FastifyBaseLogger {
  return logger.child({ component: 'http' }, { level: logger.levelVal > 40 ? logger.level : 'warn' });
}

/**
 * The HTTP edge. Limits are set on purpose: a body limit, request and connection timeouts (the request
 * timeout above the longest `Prefer: wait`), and JSON parsing that rejects prototype poisoning.
 */
export async function buildServer(deps: ServerDeps) {
  const { store, queue, logger, engine, catalog, metrics, blobs } = deps;
  const app = Fastify({
    // Warnings and errors only: the node prints where it listens itself, in words. The routes take the base
    // logger type: pino's own Logger type makes a Fastify type they cannot accept.
    loggerInstance: httpLogger(logger),
    bodyLimit: 1024 * 1024,
    requestTimeout: (MAX_WAIT_SECONDS + 30) * 1000,
    connectionTimeout: 60_000,
    keepAliveTimeout: 10_000,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // Per-request lines would drown the platform's own events; errors are still logged by the handler.
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);
  app.addHook('onResponse', (req, reply, done) => {
    metrics.request(
      req.method,
      req.routeOptions.url ?? 'unmatched',
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
    done();
  });

  app.get('/healthz', () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    if (deps.cluster.draining())
      return reply.status(503).send({
        error: { code: 'node_draining', message: 'this node is draining; send requests elsewhere' },
      });
    try {
      await store.ping();
      return { status: 'ready', store: store.dialect, schemaVersion: await store.schemaVersion() };
    } catch (error) {
      return reply.status(503).send({ error: { code: 'store_unavailable', message: String(error) } });
    }
  });

  app.get('/metrics', async (_req, reply) => {
    const { contentType, body } = await metrics.text();
    return reply.type(contentType).send(body);
  });

  app.get('/openapi.json', (req) => openApiDocument(catalog.list(), `${req.protocol}://${req.host}`));

  // Every service deployed on any node of this installation, as recorded in the store.
  app.get('/v1/services', async () => ({ services: await store.services.list() }));

  app.get<{ Params: { service: string } }>('/v1/services/:service/callers', async (req) => {
    const { service } = req.params;
    const all = await store.services.list();
    if (!all.some((s) => s.name === service))
      throw new CosmosError('service_not_found', `no service "${service}"`, { service });
    return { service, callers: await store.services.callersOf(service) };
  });

  app.get('/v1/queues', async () => {
    const queues = await queue.listQueues();
    return {
      queues: await Promise.all(
        queues.map(async (q) => ({
          ...q,
          counts: await queue.counts(q.name),
          ready: await queue.pendingByClass(q.name),
        })),
      ),
    };
  });

  // The node registry: every node of the installation, with its roles, pools, duties and last heartbeat.
  app.get('/v1/nodes', async () => ({ nodes: await deps.cluster.nodes() }));

  // This node's function layer: slots per pool, workers started, functions and their versions.
  app.get('/v1/pools', () => {
    const use = deps.runtime.slotUse();
    const stats = deps.runtime.poolStats();
    return {
      capacity: use.capacity,
      pools: use.pools.map((p) => ({ ...p, runtimes: statsOf(stats, p.pool) })),
      functions: deps.runtime.registry.list().map((r) => ({
        name: r.name,
        version: r.version,
        pool: r.def.options.pool,
        queue: r.queue,
        runtime: r.def.options.runtime,
      })),
    };
  });

  submitRoutes(app, catalog, engine);
  executionRoutes(app, store, engine);
  blobRoutes(app, blobs);
  liveRoutes(app, deps.live);
  await uiRoutes(app);
  return app;
}

/** A pool's runners by kind (`thread:<pool>`, `sandbox:<pool>`), as the worker pools count them. */
function statsOf(
  stats: ReturnType<FunctionRuntime['poolStats']>,
  pool: string,
): Record<string, ReturnType<FunctionRuntime['poolStats']>[string]> {
  return Object.fromEntries(
    Object.entries(stats)
      .filter(([k]) => k.endsWith(`:${pool}`))
      .map(([k, v]) => [k.slice(0, k.indexOf(':')), v]),
  );
}
