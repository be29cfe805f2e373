/**
 * Child process for the workflow durability test: an engine and a function runtime on one store. `start`
 * starts the executions and reports when all are acknowledged; `resume` only runs. The parent kills it with
 * SIGKILL at a random moment, or stops it with SIGTERM.
 */
import type { StoreOptions } from '../../src/config.js';
import { FunctionRuntime } from '../../src/functions/runtime.js';
import { Queue } from '../../src/queue/queue.js';
import { openStore } from '../../src/store/open.js';
import { WorkflowEngine } from '../../src/workflow/engine.js';
import { fanout, tick } from '../fixtures/workflows/fanout.js';

const [optionsJson, dir, mode, run, count, log] = process.argv.slice(2);
const LEASE_MS = 500;
const store = await openStore(JSON.parse(optionsJson!) as StoreOptions);
const queue = new Queue(store, { pollIntervalMs: 100 });
const runtime = new FunctionRuntime(queue, {
  bundleDir: `${dir}/bundles`,
  capacity: 8,
  leaseMs: LEASE_MS,
  pollMs: 100,
});
await runtime.register('tick', tick, {
  module: new URL('../fixtures/workflows/fanout.ts', import.meta.url).pathname,
});
const engine = new WorkflowEngine(queue, runtime, { leaseMs: LEASE_MS, pollMs: 100 });
await engine.register('fanout', fanout);
await runtime.start();
await engine.start();
process.on('SIGTERM', () => {
  void (async () => {
    await engine.stop();
    await runtime.stop();
    await queue.close();
    await store.close();
    process.exit(0);
  })();
});
if (mode === 'start') {
  await Promise.all(
    Array.from({ length: Number(count) }, (_, i) =>
      engine.execute('fanout', { log: log! }, { id: `${run}-${i}` }),
    ),
  );
  process.stdout.write('started\n');
} else process.stdout.write('resumed\n');
