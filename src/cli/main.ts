#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
import { readEnv } from '../env.js';
import { isCosmosError } from '../errors.js';
import { Queue } from '../queue/queue.js';
import { openStore } from '../store/open.js';
import { callCommand } from './call.js';
import { clientCommand } from './client.js';
import { inspectCommands, withTarget } from './inspect.js';
import { storeFrom } from './platform.js';
import { serve, type ServeOptions } from './serve.js';

const env = readEnv();

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new InvalidArgumentError('a port is 0..65535');
  return n;
}

const program = new Command('cosmos')
  .description('Cosmos: API, workflow and function layers over a durable priority queue')
  .showHelpAfterError();

program
  .command('dev [dir]')
  .description('run everything in one process on the embedded SQLite store; reloads services on change')
  .addOption(
    new Option('--port <port>', 'HTTP port (0 picks a free one)').argParser(port).default(env.port ?? 7070),
  )
  .addOption(new Option('--host <host>', 'address to bind (loopback only)').default(env.host ?? '127.0.0.1'))
  .option('--data <dir>', 'folder of the embedded store', env.dataDir ?? '.cosmos')
  .action((dir: string | undefined, opts: ServeOptions) =>
    serve('dev', { ...opts, watch: true, ...(dir !== undefined && { dir }) }, env),
  );

function slots(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('slots is a whole number of at least 1');
  return n;
}

/** Options both distributed commands take; flags win over COSMOS_* variables, which win over --config. */
function nodeOptions(command: Command): Command {
  return command
    .option('--db <url>', 'PostgreSQL connection URL (or COSMOS_DATABASE_URL)')
    .option('--schema <name>', 'schema holding the platform tables (default cosmos)')
    .option('--config <file>', 'configuration file (JSON; or COSMOS_CONFIG): see docs/deploy.md')
    .option('--name <name>', "the node's name in the registry (default host:pid)");
}

nodeOptions(
  program
    .command('start [dir]')
    .description('run an API/engine node on PostgreSQL, serving the services in [dir]; any number may run')
    .option('--port <port>', 'HTTP port (0 picks a free one; default 7070)', port)
    .option('--host <host>', 'address to bind (default 127.0.0.1)')
    .option('--roles <roles>', 'comma-separated roles: api, engine, worker (default api,engine)'),
).action((dir: string | undefined, opts: ServeOptions) =>
  serve('start', { ...opts, ...(dir !== undefined && { dir }) }, env),
);

nodeOptions(
  program
    .command('worker [dir]')
    .description(
      'run a worker node on PostgreSQL: runs the functions of the services in [dir] for the given pools',
    )
    .option('--pools <pools>', 'comma-separated pools to run (default: every pool of the services)')
    .option('--slots <n>', 'function slots on this node (default: its cores)', slots),
).action((dir: string | undefined, opts: ServeOptions) =>
  serve('worker', { ...opts, ...(dir !== undefined && { dir }) }, env),
);

callCommand(program, `http://127.0.0.1:${env.port ?? 7070}`);
inspectCommands(program);
clientCommand(program);

withTarget(
  program
    .command('queues')
    .description('list queues with their settings and message counts')
    .option('--json', 'print JSON'),
).action(async (opts: { data?: string; db?: string; schema?: string; url?: string; json?: boolean }) => {
  if (opts.url) {
    const res = await fetch(`${opts.url.replace(/\/+$/, '')}/v1/queues`);
    const body = (await res.json()) as { queues: unknown[] };
    process.stdout.write(`${JSON.stringify(body.queues, null, 2)}\n`);
    return;
  }
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
