import { buildServer } from './api/server.js';
import { resolveOptions, type CosmosOptions, type CosmosOptionsInput } from './config.js';
import { createLogger, type Logger } from './observability/logger.js';
import { Queue } from './queue/queue.js';
import { openStore } from './store/open.js';
import type { Store } from './store/store.js';

/** A running Cosmos node: store, queue (with maintenance) and the HTTP edge. */
export interface CosmosNode {
  readonly options: CosmosOptions;
  readonly store: Store;
  readonly queue: Queue;
  readonly logger: Logger;
  /** Where the HTTP edge listens, e.g. http://127.0.0.1:7070 */
  readonly url: string;
  close(): Promise<void>;
}

export async function startNode(input: CosmosOptionsInput = {}): Promise<CosmosNode> {
  const options = resolveOptions(input);
  const logger = createLogger(options.logLevel);
  const store = await openStore(options.store);
  const queue = new Queue(store, options.queue);
  queue.startMaintenance((error) => logger.warn({ err: error }, 'queue maintenance failed; will retry'));
  const app = buildServer({ store, queue, logger });
  let url: string;
  try {
    await app.listen({ host: options.server.host, port: options.server.port });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : options.server.port;
    url = `http://${options.server.host.includes(':') ? `[${options.server.host}]` : options.server.host}:${port}`;
  } catch (error) {
    await queue.close();
    await store.close();
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    options,
    store,
    queue,
    logger,
    url,
    close: () =>
      (closing ??= (async () => {
        await app.close();
        await queue.close();
        await store.close();
      })()),
  };
}
