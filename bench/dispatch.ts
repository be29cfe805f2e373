import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { bundle } from '../src/functions/bundler.js';
import { Dispatcher, type DispatchJob } from '../src/functions/dispatcher.js';
import { Gatherer } from '../src/functions/gather.js';
import { FunctionRuntime } from '../src/functions/runtime.js';
import { ThreadRunner } from '../src/functions/runtimes/thread-runner.js';
import { SlotScheduler } from '../src/functions/scheduler/slot-scheduler.js';
import { WorkerPool } from '../src/functions/worker-pool.js';
import { Queue } from '../src/queue/queue.js';
import { openStore } from '../src/store/open.js';
import type { StoreOptions } from '../src/config.js';
import { barChart } from './lib/chart.js';
import { intOption } from './lib/args.js';
import { Cleanup } from './lib/cleanup.js';
import { guardRun } from './lib/guard.js';
import { machineInfo } from './lib/machine.js';
import { allowedCpus, busiestThread, cannotPin, pinThread, threadTimes } from './lib/affinity.js';
import { databaseUrl, dropSchema, uniqueSchema } from './lib/pg.js';
import { Progress } from './lib/progress.js';
import { Report } from './lib/report.js';
import { summarize, type Summary } from './lib/stats.js';

const USAGE = `usage: npm run bench -- dispatch [options]
  --samples <n>     timed round trips per system (default 6000, in rounds that rotate the systems)
  --tiny <n>        invocations of the tiny function per throughput run (default 20000)
  --durable <n>     end-to-end invocations per store (default 300)
  --no-postgres     skip the PostgreSQL end-to-end figures`;

interface Settings {
  samples: number;
  rounds: number;
  warmup: number;
  tiny: number;
  durable: number;
  postgres: boolean;
}

function parseSettings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      samples: { type: 'string' },
      tiny: { type: 'string' },
      durable: { type: 'string' },
      'no-postgres': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const int = intOption;
  return {
    samples: int(values.samples, 6_000, 'samples'),
    rounds: 6,
    warmup: 5_000,
    tiny: int(values.tiny, 20_000, 'tiny'),
    durable: int(values.durable, 300, 'durable'),
    postgres: !values['no-postgres'],
  };
}

/** Milliseconds to microseconds, to 0.1 µs. */
const us = (ms: number): number => Math.round(ms * 10_000) / 10;

/** One system's round trip: send `{n}` to a warm worker and get it back. */
type RoundTrip = (n: number) => Promise<unknown>;

const ECHO = fileURLToPath(new URL('./lib/echo-worker.mjs', import.meta.url));

export async function main(argv: string[]): Promise<void> {
  const settings = parseSettings(argv);
  const report = new Report();
  const progress = new Progress();
  const cleanup = new Cleanup();
  const disarm = guardRun(progress, cleanup, 10 * 60_000);
  const started = new Date();
  const dir = mkdtempSync(join(tmpdir(), 'cosmos-bench-dispatch-'));
  cleanup.add(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  try {
    const fns = (await bundle(fileURLToPath(new URL('./functions/tiny.ts', import.meta.url)), dir)).path;
    const { latency, placement } = await roundTrips(settings, progress, cleanup, fns);
    const raw = latency.get('raw worker_threads')!;
    const cosmos = latency.get('Cosmos dispatch')!;
    const piscina = latency.get('piscina')!;
    report.metric('dispatch_raw_worker_threads_p50', us(raw.p50), 'µs');
    report.metric('dispatch_raw_worker_threads_p99', us(raw.p99), 'µs');
    report.metric('dispatch_piscina_p50', us(piscina.p50), 'µs');
    report.metric('dispatch_piscina_p99', us(piscina.p99), 'µs');
    report.metric('dispatch_cosmos_p50', us(cosmos.p50), 'µs');
    report.metric('dispatch_cosmos_p99', us(cosmos.p99), 'µs');
    for (const line of barChart(
      [...latency].map(([label, s]) => ({ label, value: Math.round(s.p50 * 1000) })),
      'µs p50',
    ))
      progress.info(`  ${line}`);

    const tp = await throughput(settings, progress, cleanup, fns);
    report.metric('tiny_unbatched_throughput', tp.unbatched, 'invocations/s');
    report.metric('tiny_batched_throughput', tp.batched, 'invocations/s');

    for (const kind of settings.postgres ? (['sqlite', 'postgres'] as const) : (['sqlite'] as const)) {
      const e2e = await durable(settings, progress, cleanup, kind);
      report.metric(`invocation_e2e_${kind}_p50`, e2e.p50, 'ms');
      report.metric(`invocation_e2e_${kind}_p99`, e2e.p99, 'ms');
      report.detail(`e2e_${kind}`, e2e);
    }
    report.detail('latency', Object.fromEntries(latency));
    report.ratio('dispatch_p50_vs_raw_worker_threads', cosmos.p50 / raw.p50);
    report.ratio('dispatch_p50_vs_piscina', cosmos.p50 / piscina.p50);
    report.ratio('batched_vs_unbatched_throughput', tp.batched / tp.unbatched);
    report.write(fileURLToPath(new URL('./results/dispatch.json', import.meta.url)), {
      benchmark: 'dispatch',
      args: argv,
      date: started.toISOString(),
      durationSeconds: Number(((Date.now() - started.getTime()) / 1000).toFixed(1)),
      machine: machineInfo(),
      settings,
      method: {
        roundTrip:
          'sequential round trips of {n} to one warm worker, after warm-up; systems alternate in rounds so they share the machine',
        placement,
        cosmos:
          'SlotScheduler → WorkerPool → ThreadRunner → worker (input and output validated by zod) → back',
        throughput:
          'function layer only (the durable queue is the queue benchmark): all invocations submitted at once to the dispatcher, one warm worker per core; batched = micro-batches of 50 gathered for ≤ 5 ms; best of 5 rounds each, after 2 s (and at least 3 rounds) of unmeasured rounds of each',
        e2e: 'FunctionRuntime: invoke (durable enqueue) to the result event, which fires after the completion committed; one at a time',
      },
    });
  } finally {
    await cleanup.runAll();
    disarm();
  }
}

/** Round trips of the three systems, in rounds that rotate their order. */
async function roundTrips(
  s: Settings,
  progress: Progress,
  cleanup: Cleanup,
  fns: string,
): Promise<{ latency: Map<string, Summary>; placement: string }> {
  const raw = new Worker(ECHO, { workerData: 'raw' });
  cleanup.add('stop raw worker', () => raw.terminate().then(() => undefined));
  const waiting = new Map<number, (v: unknown) => void>();
  raw.on('message', (m: { n: number }) => {
    waiting.get(m.n)?.(m);
    waiting.delete(m.n);
  });
  const piscina = new Piscina({ filename: ECHO, minThreads: 1, maxThreads: 1 });
  cleanup.add('stop piscina', () => piscina.destroy());
  const cosmos = dispatchOn(1, fns, 'noop', cleanup);
  await cosmos.ready;

  const systems: [string, RoundTrip][] = [
    [
      'raw worker_threads',
      (n) =>
        new Promise((resolve) => {
          waiting.set(n, resolve);
          raw.postMessage({ n });
        }),
    ],
    ['piscina', (n) => piscina.run({ n })],
    ['Cosmos dispatch', (n) => cosmos.run(n)],
  ];
  const samples = new Map<string, number[]>(systems.map(([l]) => [l, []]));
  const perRound = Math.ceil(s.samples / s.rounds);
  // Each system's worker is the thread that ran most during its warm-up.
  const workerThreads: number[] = [];
  for (const [, trip] of systems) {
    const before = threadTimes();
    for (let i = 0; i < s.warmup; i++) await trip(i);
    const tid = busiestThread(before);
    if (tid !== undefined) workerThreads.push(tid);
  }
  const { placement, restore } = pinForRoundTrips(progress, workerThreads);
  try {
    await measureRounds(s, progress, systems, samples, perRound);
  } finally {
    restore();
  }
  return { latency: new Map([...samples].map(([l, v]) => [l, summarize(v)])), placement };
}

/**
 * The main thread on one CPU and every system's worker on another (see lib/affinity.ts): the placement a
 * busy node gives its workers, the same for every system. Returns how the threads were placed, and what
 * puts the main thread back, so the threads started later (the throughput run's workers inherit its mask)
 * may use every CPU.
 */
function pinForRoundTrips(progress: Progress, workers: number[]): { placement: string; restore: () => void } {
  const why =
    cannotPin() ?? (new Set(workers).size < 3 ? "the workers' threads were not told apart" : undefined);
  if (why !== undefined) {
    progress.info(`  threads not pinned: ${why}; round trips depend on where the kernel puts each worker`);
    return { placement: `left to the kernel (${why})`, restore: () => undefined };
  }
  const cpus = allowedCpus();
  const [main, other] = [cpus[0]!, cpus[1]!];
  pinThread(process.pid, [main]);
  for (const tid of workers) pinThread(tid, [other]);
  const placement = `main thread on CPU ${main}, every system's worker thread on CPU ${other}`;
  progress.info(`  threads pinned: ${placement}`);
  return { placement, restore: () => pinThread(process.pid, cpus) };
}

async function measureRounds(
  s: Settings,
  progress: Progress,
  systems: [string, RoundTrip][],
  samples: Map<string, number[]>,
  perRound: number,
): Promise<void> {
  for (let r = 0; r < s.rounds; r++) {
    const order = systems.map((_, i) => systems[(i + r) % systems.length]!);
    for (const [label, trip] of order) {
      progress.start(`round trip ${r + 1}/${s.rounds}: ${label}`);
      const out = samples.get(label)!;
      for (let i = 0; i < perRound; i++) {
        const t0 = performance.now();
        await trip(i);
        out.push(performance.now() - t0);
      }
      progress.done(`p50 ${(summarize(out).p50 * 1000).toFixed(1)} µs`);
    }
  }
}

/** The node's dispatch path without the queue: scheduler, warm worker pool, thread runners. */
function dispatchOn(
  cores: number,
  module: string,
  name: string,
  cleanup: Cleanup,
  batch = false,
): { ready: Promise<void>; run: (input: unknown) => Promise<unknown> } {
  const workers = new WorkerPool({
    label: 'bench',
    min: cores,
    max: cores,
    perRunner: 1,
    idleMs: 0,
    spawn: () => ThreadRunner.start({ memoryMb: 256 }),
  });
  cleanup.add('stop worker pool', () => workers.close());
  const dispatcher = new Dispatcher(new SlotScheduler({ capacity: cores, pools: [{ name: 'default' }] }));
  let id = 0;
  // As a registered function's ref: one object for every call.
  const ref = { module, name };
  const job = (input: unknown): DispatchJob => ({
    id: `j${id++}`,
    pool: 'default',
    priority: id,
    fn: name,
    slots: 1,
    opportunistic: false,
    workers,
    timeoutMs: 60_000,
    input: { ref, input, batch, attempt: 1, invocationId: String(id) },
  });
  return {
    ready: workers.warm(),
    run: (input) => dispatcher.run(job(batch ? input : { n: input as number })),
  };
}

const ROUNDS = 5;
/**
 * Unmeasured rounds first, for as long as each mode needs to reach its steady state: 2 s of rounds each (at
 * least 3). A batched round is short (10-30 ms), and measured from a cold start the batched rounds kept
 * climbing for 10-20 rounds (from about 0.6 to 2 million invocations/s, as the JIT compiled the batch path and
 * the young generation grew) while the unbatched ones, 120-250 ms each, were level after their first. Three
 * rounds of each, the earlier warm-up, left the batched figure on the slope.
 */
const WARMUP_MS = 2_000;
const WARMUP_MIN_ROUNDS = 3;

/** The tiny function through the function layer, one call per invocation against micro-batches of 50. */
async function throughput(
  s: Settings,
  progress: Progress,
  cleanup: Cleanup,
  fns: string,
): Promise<{ unbatched: number; batched: number }> {
  const cores = availableParallelism();
  const one = dispatchOn(cores, fns, 'double', cleanup);
  const many = dispatchOn(cores, fns, 'doubleBatch', cleanup, true);
  await Promise.all([one.ready, many.ready]);
  const unbatchedRound = (): Promise<unknown> =>
    Promise.all(Array.from({ length: s.tiny }, (_, n) => one.run(n)));
  const best = { unbatched: 0, batched: 0 };
  progress.start(`tiny function: ${WARMUP_MS / 1000} s of unmeasured rounds of each mode`);
  const warm = { unbatched: { ms: 0, rounds: 0 }, batched: { ms: 0, rounds: 0 } };
  const cold = (w: { ms: number; rounds: number }): boolean =>
    w.ms < WARMUP_MS || w.rounds < WARMUP_MIN_ROUNDS;
  while (cold(warm.unbatched) || cold(warm.batched))
    for (const [w, round] of [
      [warm.unbatched, unbatchedRound],
      [warm.batched, () => batchedRound(s.tiny, many.run)],
    ] as const) {
      if (!cold(w)) continue;
      const t0 = performance.now();
      await round();
      w.ms += performance.now() - t0;
      w.rounds++;
    }
  progress.done(`${warm.unbatched.rounds} unbatched and ${warm.batched.rounds} batched rounds`);
  // Best of five: a batched round lasts 10-30 ms, so one garbage collection or a thread the VM is slow to
  // wake moves it by half; the unbatched rounds (120-250 ms) barely move. Both get the same rounds.
  for (let r = 0; r < ROUNDS; r++) {
    progress.start(`tiny function, ${s.tiny} invocations, one call each (round ${r + 1}/${ROUNDS})`);
    let t0 = performance.now();
    await unbatchedRound();
    const unbatched = Math.round(s.tiny / ((performance.now() - t0) / 1000));
    progress.done(`${unbatched} invocations/s`);

    progress.start(`tiny function, ${s.tiny} invocations, micro-batches of 50 (round ${r + 1}/${ROUNDS})`);
    t0 = performance.now();
    await batchedRound(s.tiny, many.run);
    const batched = Math.round(s.tiny / ((performance.now() - t0) / 1000));
    progress.done(`${batched} invocations/s`);
    best.unbatched = Math.max(best.unbatched, unbatched);
    best.batched = Math.max(best.batched, batched);
  }
  return best;
}

/** `count` invocations gathered into micro-batches of 50 (at most 5 ms apart), all submitted at once. */
async function batchedRound(count: number, run: (items: unknown) => Promise<unknown>): Promise<void> {
  const calls: Promise<unknown>[] = [];
  const gatherer = new Gatherer<{ n: number }>(50, 5, (items) => calls.push(run(items)));
  for (let n = 0; n < count; n++) gatherer.add({ n });
  gatherer.close();
  await Promise.all(calls);
}

/** Enqueue to result committed, one invocation at a time, through the durable runtime. */
async function durable(
  s: Settings,
  progress: Progress,
  cleanup: Cleanup,
  kind: 'sqlite' | 'postgres',
): Promise<Summary> {
  const dir = mkdtempSync(join(tmpdir(), `cosmos-bench-e2e-${kind}-`));
  cleanup.add(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  const url = databaseUrl();
  const schema = uniqueSchema('bench_dispatch');
  const options: StoreOptions =
    kind === 'sqlite' ? { kind, path: join(dir, 'cosmos.db') } : { kind, url, schema, poolSize: 4 };
  if (kind === 'postgres') cleanup.add(`drop schema ${schema}`, () => dropSchema(url, schema));
  const store = await openStore(options);
  const closeStore = cleanup.add('close store', () => store.close());
  const queue = new Queue(store);
  const runtime = new FunctionRuntime(queue, {
    bundleDir: join(dir, 'bundles'),
    capacity: 1,
    warm: { default: 1 },
  });
  const stop = cleanup.add('stop runtime', async () => {
    await runtime.stop();
    await queue.close();
  });
  await runtime.register('noop', (await import('./functions/tiny.js')).noop, {
    module: fileURLToPath(new URL('./functions/tiny.ts', import.meta.url)),
  });
  // A result can arrive before invoke() has returned its id to us: remember those too.
  const done = new Map<number, () => void>();
  const early = new Set<number>();
  runtime.onResult((r) => {
    const resolve = done.get(r.messageId);
    if (resolve) resolve();
    else early.add(r.messageId);
  });
  await runtime.start();
  const times: number[] = [];
  progress.start(`end to end on ${kind}: ${s.durable} invocations, one at a time`);
  for (let i = 0; i < s.durable + 20; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      runtime.invoke('noop', { n: i }).then(({ id }) => {
        if (early.delete(id)) resolve();
        else done.set(id, resolve);
      }, reject);
    });
    if (i >= 20) times.push(performance.now() - t0);
    progress.update(`${i + 1}/${s.durable + 20}`);
  }
  const summary = summarize(times);
  progress.done(`p50 ${summary.p50.toFixed(2)} ms, p99 ${summary.p99.toFixed(2)} ms`);
  await stop();
  await closeStore();
  return summary;
}
