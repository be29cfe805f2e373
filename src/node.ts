import { dirname, join } from 'node:path';
import { ServiceCatalog } from './api/catalog.js';
import { loadServices } from './api/loader.js';
import { LiveFeed } from './api/live.js';
import { buildServer } from './api/server.js';
import { resolveOptions, type CosmosOptions, type CosmosOptionsInput } from './config.js';
import { FunctionRuntime } from './functions/runtime.js';
import { createLogger, type Logger } from './observability/logger.js';
import { NodeMetrics } from './observability/metrics.js';
import { OtlpTraceExport } from './observability/otlp.js';
import { Queue } from './queue/queue.js';
import { openBlobStore } from './store/blobs/open-blobs.js';
import { openStore } from './store/open.js';
import type { Store } from './store/store.js';
import { idsOf, WorkflowEngine } from './workflow/engine.js';

/** A running Cosmos node: store, queue (with maintenance), function runtime, workflow engine, HTTP edge. */
export interface CosmosNode {
  readonly options: CosmosOptions;
  readonly store: Store;
  readonly queue: Queue;
  readonly runtime: FunctionRuntime;
  readonly engine: WorkflowEngine;
  readonly catalog: ServiceCatalog;
  readonly logger: Logger;
  /** Where the HTTP edge listens, e.g. http://127.0.0.1:7070 */
  readonly url: string;
  /** Loads the services folder again and deploys what changed (new versions; running executions stay pinned). */
  reload(): Promise<string[]>;
  close(): Promise<void>;
}

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
    const queue = new Queue(store, options.queue);
    closers.push(() => queue.close());
    queue.startMaintenance((error) => logger.warn({ err: error }, 'queue maintenance failed; will retry'));
    const blobs = await openBlobStore(store, { dir: join(dataDir, 'blobs') });
    const runtime = new FunctionRuntime(queue, {
      logger: logger.child({ component: 'functions' }),
      ...(options.redact.line && { redactLine: options.redact.line }),
      bundleDir: join(dataDir, 'bundles'),
      workDir: join(dataDir, 'work'),
      blobs,
      ...(options.runtime.capacity !== undefined && { capacity: options.runtime.capacity }),
    });
    const engine: WorkflowEngine = new WorkflowEngine(queue, runtime, {
      logger: logger.child({ component: 'workflow' }),
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
    await runtime.start();
    closers.push(() => runtime.stop());
    await engine.start();
    closers.push(() => engine.stop());
    const live = new LiveFeed();
    engine.onCommitted((x) => live.committed(x));
    closers.push(() => Promise.resolve(live.close()));
    const app = await buildServer({ store, queue, logger, engine, catalog, metrics, blobs, runtime, live });
    await app.listen({ host: options.server.host, port: options.server.port });
    closers.push(() => app.close());
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : options.server.port;
    const url = `http://${options.server.host.includes(':') ? `[${options.server.host}]` : options.server.host}:${port}`;
    logger.debug({ files }, 'services loaded');
    let closing: Promise<void> | undefined;
    return {
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
