import Fastify, { LogController } from 'fastify';
import type { Logger } from 'pino';
import type { Queue } from '../queue/queue.js';
import type { Store } from '../store/store.js';
import { errorHandler, notFoundHandler } from './errors.js';

export interface ServerDeps {
  store: Store;
  queue: Queue;
  logger: Logger;
}

/**
 * The HTTP edge. Limits are set on purpose: a body limit, request and connection timeouts, and JSON
 * parsing that rejects prototype poisoning.
 */
export function buildServer({ store, queue, logger }: ServerDeps) {
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: 1024 * 1024,
    requestTimeout: 30_000,
    connectionTimeout: 60_000,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // Per-request lines would drown the platform's own events; errors are still logged by the handler.
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);

  app.get('/healthz', () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    try {
      await store.ping();
      return { status: 'ready', store: store.dialect, schemaVersion: await store.schemaVersion() };
    } catch (error) {
      return reply.status(503).send({ error: { code: 'store_unavailable', message: String(error) } });
    }
  });

  app.get('/v1/queues', async () => {
    const queues = await queue.listQueues();
    return {
      queues: await Promise.all(queues.map(async (q) => ({ ...q, counts: await queue.counts(q.name) }))),
    };
  });

  return app;
}
