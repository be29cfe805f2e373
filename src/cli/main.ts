#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
import { join, resolve } from 'node:path';
import type { StoreOptions } from '../config.js';
import { readEnv } from '../env.js';
import { isCosmosError } from '../errors.js';
import { startNode } from '../node.js';
import { Queue } from '../queue/queue.js';
import { openStore } from '../store/open.js';
import { isLoopback } from './loopback.js';

const env = readEnv();

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new InvalidArgumentError('a port is 0..65535');
  return n;
}

function refuseUnauthenticated(host: string): void {
  if (isLoopback(host)) return;
  throw new Error(
    `refusing to listen on ${host} without authentication: only loopback addresses are served unauthenticated. ` +
      'Bind to 127.0.0.1, or configure authentication (API keys / JWT) once the security layer is enabled.',
  );
}

/** --data <dir> (embedded SQLite) or --db <url> (PostgreSQL): where platform state lives. */
function storeFrom(opts: { data?: string; db?: string; schema?: string }): StoreOptions {
  if (opts.db) return { kind: 'postgres', url: opts.db, ...(opts.schema && { schema: opts.schema }) };
  return { kind: 'sqlite', path: join(resolve(opts.data ?? env.dataDir ?? '.cosmos'), 'cosmos.db') };
}

async function serve(
  kind: 'dev' | 'start',
  opts: { host: string; port: number; data?: string; db?: string; schema?: string },
): Promise<void> {
  refuseUnauthenticated(opts.host);
  const store = storeFrom(opts);
  const node = await startNode({
    store,
    server: { host: opts.host, port: opts.port },
    ...(env.logLevel && { logLevel: env.logLevel }),
  });
  const where =
    store.kind === 'sqlite'
      ? `embedded SQLite at ${store.path}`
      : `PostgreSQL schema "${store.schema ?? 'cosmos'}"`;
  process.stdout.write(`cosmos ${kind}: listening on ${node.url} (store: ${where})\n`);
  process.stdout.write(
    `  health ${node.url}/healthz · ready ${node.url}/readyz · queues ${node.url}/v1/queues\n`,
  );
  const stop = (signal: string): void => {
    process.stdout.write(`cosmos ${kind}: ${signal}, shutting down\n`);
    node.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

const program = new Command('cosmos')
  .description('Cosmos: API, workflow and function layers over a durable priority queue')
  .showHelpAfterError();

program
  .command('dev')
  .description('run everything in one process on the embedded SQLite store')
  .addOption(
    new Option('--port <port>', 'HTTP port (0 picks a free one)').argParser(port).default(env.port ?? 7070),
  )
  .addOption(new Option('--host <host>', 'address to bind (loopback only)').default(env.host ?? '127.0.0.1'))
  .option('--data <dir>', 'folder of the embedded store', env.dataDir ?? '.cosmos')
  .action((opts: { port: number; host: string; data: string }) => serve('dev', opts));

program
  .command('start')
  .description('run an API/engine node on PostgreSQL')
  .addOption(
    new Option('--db <url>', 'PostgreSQL connection URL').default(env.databaseUrl).makeOptionMandatory(),
  )
  .option('--schema <name>', 'schema holding the platform tables', 'cosmos')
  .addOption(
    new Option('--port <port>', 'HTTP port (0 picks a free one)').argParser(port).default(env.port ?? 7070),
  )
  .addOption(new Option('--host <host>', 'address to bind').default(env.host ?? '127.0.0.1'))
  .action((opts: { db: string; schema: string; port: number; host: string }) => serve('start', opts));

program
  .command('queues')
  .description('list queues with their settings and message counts')
  .option('--data <dir>', 'folder of the embedded store')
  .option('--db <url>', 'PostgreSQL connection URL')
  .option('--schema <name>', 'schema holding the platform tables')
  .option('--json', 'print JSON')
  .action(async (opts: { data?: string; db?: string; schema?: string; json?: boolean }) => {
    const store = await openStore(storeFrom(opts));
    try {
      const queue = new Queue(store);
      const rows = await Promise.all(
        (await queue.listQueues()).map(async (q) => ({ ...q, counts: await queue.counts(q.name) })),
      );
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      if (rows.length === 0) process.stdout.write('no queues yet\n');
      for (const r of rows) {
        const flags = [
          r.exclusive && 'exclusive',
          r.enqueuePaused && 'enqueue-paused',
          r.dequeuePaused && 'dequeue-paused',
        ]
          .filter(Boolean)
          .join(',');
        const c = r.counts;
        process.stdout.write(
          `${r.name.padEnd(32)} pending ${c.pending} invisible ${c.invisible} running ${c.running} completed ${c.completed} errored ${c.errored} canceled ${c.canceled}${flags ? ` [${flags}]` : ''}\n`,
        );
      }
    } finally {
      await store.close();
    }
  });

program.parseAsync().catch((error: unknown) => {
  const message = isCosmosError(error)
    ? `${error.code}: ${error.message}`
    : error instanceof Error
      ? error.message
      : String(error);
  process.stderr.write(`cosmos: ${message}\n`);
  process.exit(isCosmosError(error) ? 2 : 1);
});
