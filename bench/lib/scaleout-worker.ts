/**
 * A worker process of the scale-out benchmark: a function runtime serving the `noop` function on the
 * PostgreSQL schema it is given, as `cosmos worker` runs one. It prints `ready`, then answers `count` on stdin
 * with its round trips so far, and `stop` by stopping.
 */
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { FunctionRuntime } from '../../src/functions/runtime.js';
import { Queue } from '../../src/queue/queue.js';
import type { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { openStore } from '../../src/store/open.js';
import { noop } from '../functions/tiny.js';

const [url, schema, slots, bundleDir] = process.argv.slice(2);
const store = (await openStore({
  kind: 'postgres',
  url: url!,
  schema: schema!,
  poolSize: 4,
})) as PostgresStore;
const queue = new Queue(store);
const runtime = new FunctionRuntime(queue, {
  bundleDir: bundleDir!,
  capacity: Number(slots),
  warm: { default: Number(slots) },
});
await runtime.register('noop', noop, {
  module: fileURLToPath(new URL('../functions/tiny.ts', import.meta.url)),
});
await runtime.start();
process.stdout.write('ready\n');
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'count') process.stdout.write(`${JSON.stringify({ roundTrips: store.roundTrips })}\n`);
  if (line === 'stop')
    void (async () => {
      await runtime.stop();
      await queue.close();
      await store.close();
      process.exit(0);
    })();
});
