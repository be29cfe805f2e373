/**
 * Child process for the crash test: leases a batch, completes part of it one message at a time, reporting
 * each commit on stdout, and is killed with SIGKILL by the parent somewhere in the middle.
 */
import type { StoreOptions } from '../../src/config.js';
import { Queue } from '../../src/queue/queue.js';
import { openStore } from '../../src/store/open.js';

const [optionsJson, queueName, batch] = process.argv.slice(2);
const store = await openStore(JSON.parse(optionsJson!) as StoreOptions);
const queue = new Queue(store);
const leased = await queue.dequeue({ queue: queueName!, max: Number(batch) });
process.stdout.write(`leased ${JSON.stringify(leased.map((m) => m.id))}\n`);
for (const m of leased) {
  await queue.completeMany([m.lease]);
  process.stdout.write(`completed ${m.id}\n`);
  await new Promise((r) => setTimeout(r, 5));
}
// Never reached in the test: the parent kills the process first.
process.stdout.write('finished\n');
