import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { bundle } from '../../src/functions/bundler.js';
import { Dispatcher, type DispatchJob } from '../../src/functions/dispatcher.js';
import { ThreadRunner } from '../../src/functions/runtimes/thread-runner.js';
import { SlotScheduler } from '../../src/functions/scheduler/slot-scheduler.js';
import { WorkerPool } from '../../src/functions/worker-pool.js';

let dir: string;
let module: string;
const pools: WorkerPool[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cosmos-dispatch-'));
  module = (await bundle('test/fixtures/functions/basic.ts', dir)).path;
});
afterEach(() => vi.restoreAllMocks());
afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
  rmSync(dir, { recursive: true, force: true });
});

/** A node of one slot and one warm worker thread. */
async function node(): Promise<{ dispatcher: Dispatcher; scheduler: SlotScheduler; job: Job }> {
  const workers = new WorkerPool({
    label: 'test',
    min: 1,
    max: 1,
    perRunner: 1,
    idleMs: 0,
    spawn: () => ThreadRunner.start({ memoryMb: 128 }),
  });
  pools.push(workers);
  await workers.warm();
  const scheduler = new SlotScheduler({ capacity: 1, pools: [{ name: 'default' }] });
  let n = 0;
  const job: Job = (name, input, priority) => ({
    id: `j${n++}`,
    pool: 'default',
    priority,
    fn: name,
    slots: 1,
    opportunistic: false,
    workers,
    timeoutMs: 10_000,
    input: { ref: { module, name }, input, batch: false, attempt: 1, invocationId: `inv${n}` },
  });
  return { dispatcher: new Dispatcher(scheduler), scheduler, job };
}
type Job = (name: string, input: unknown, priority: number) => DispatchJob;

/** Counts the messages the main thread posts to worker threads. */
function countPosts(): { readonly n: number } {
  const spy = vi.spyOn(Worker.prototype, 'postMessage');
  return {
    get n() {
      return spy.mock.calls.length;
    },
  };
}

describe('dispatcher convoys', () => {
  it('sends quick invocations waiting for a saturated slot to one thread together, in priority order', async () => {
    const { dispatcher, scheduler, job } = await node();
    // Its runs tell the dispatcher how quick the handler is (a moving average: the first, cold runs are slow).
    for (let i = 0; i < 30; i++) await dispatcher.run(job('echo', { n: i }, 0));
    const posts = countPosts();
    const order: number[] = [];
    let riding = 0;
    const all = Array.from({ length: 40 }, (_, i) =>
      dispatcher.run(job('echo', { n: i }, 100 - i)).then((out) => {
        riding = Math.max(riding, scheduler.snapshot().runningItems);
        order.push((out as { n: number }).n);
        return out;
      }),
    );
    const outs = await Promise.all(all);
    expect(outs).toEqual(Array.from({ length: 40 }, (_, i) => ({ n: i })));
    // The first took the free slot alone; the rest waited and then left, best priority first, in convoys of a
    // leader and at most 31 riders: three messages for forty runs (four if a hiccup on the worker, a GC pause
    // say, pushed the handler's average past the bar for a moment).
    expect(order).toEqual([0, ...Array.from({ length: 39 }, (_, i) => 39 - i)]);
    expect(posts.n).toBeGreaterThanOrEqual(3);
    expect(posts.n).toBeLessThanOrEqual(4);
    expect(riding).toBeGreaterThan(1);
    expect(riding).toBeLessThanOrEqual(32);
    // The convoy held the slot, and only the slot, until its last run settled.
    expect(scheduler.snapshot()).toMatchObject({ running: 0, runningItems: 0, waiting: 0 });
  });

  it('never puts a slow handler in a convoy', async () => {
    const { dispatcher, scheduler, job } = await node();
    for (let i = 0; i < 3; i++) await dispatcher.run(job('slow', { ms: 5 }, 0));
    const posts = countPosts();
    await Promise.all(Array.from({ length: 6 }, (_, i) => dispatcher.run(job('slow', { ms: 5 }, i))));
    expect(posts.n).toBe(6);
    expect(scheduler.snapshot()).toMatchObject({ running: 0, runningItems: 0 });
  });

  it('refuses a job the scheduler refuses without disturbing the running job of the same id', async () => {
    const { dispatcher, scheduler, job } = await node();
    const first = job('slow', { ms: 50 }, 0);
    const running = dispatcher.run(first);
    await expect(dispatcher.run({ ...first, input: { ...first.input, input: { ms: 1 } } })).rejects.toThrow(
      /already waiting or running/,
    );
    await expect(dispatcher.run({ ...job('echo', { n: 1 }, 0), pool: 'nope' })).rejects.toThrow(
      /unknown pool/,
    );
    // The first job still answers, and leaves nothing behind.
    await expect(running).resolves.toEqual({ done: true });
    expect(scheduler.snapshot()).toMatchObject({ running: 0, runningItems: 0, waiting: 0 });
  });
});
