/**
 * `npm run bench -- scaleout`: no-op workflow throughput on one PostgreSQL with 1, 2 and 4 worker processes,
 * and the database round trips per invocation at each size (every statement of the engine process and of
 * every worker, counted on their pooled connections, divided by the invocations run). Coordination through
 * the database must not cost more round trips per invocation as nodes are added.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { FunctionRuntime } from '../src/functions/runtime.js';
import { Queue } from '../src/queue/queue.js';
import type { PostgresStore } from '../src/store/postgres/postgres-store.js';
import { openStore } from '../src/store/open.js';
import { WorkflowEngine } from '../src/workflow/engine.js';
import { intOption, stringOptions } from './lib/args.js';
import { barChart } from './lib/chart.js';
import { Cleanup } from './lib/cleanup.js';
import { driveExecutions } from './lib/drive.js';
import { guardRun } from './lib/guard.js';
import { machineInfo } from './lib/machine.js';
import { databaseUrl, dropSchema, serverInfo, uniqueSchema } from './lib/pg.js';
import { Progress } from './lib/progress.js';
import { Report } from './lib/report.js';

const USAGE = `usage: npm run bench -- scaleout [options]
  --executions <n>   measured executions per size (default 2000; 3 invocations each)
  --in-flight <n>    executions in flight (default 100)
  --slots <n>        function slots per worker process (default 2)`;

const SIZES = [1, 2, 4];
const WORKER = fileURLToPath(new URL('./lib/scaleout-worker.ts', import.meta.url));
const INVOCATIONS_PER_EXECUTION = 3;

interface Worker {
  child: ChildProcess;
  /** Lines printed and not yet read: a line that arrives before anyone waits for it must not be lost. */
  lines: string[];
  waiter?: (line: string) => void;
}

interface Size {
  workers: number;
  throughput: number;
  invocationsPerSecond: number;
  roundTrips: number;
  roundTripsPerInvocation: number;
  engineRoundTripsPerInvocation: number;
}

function nextLine(w: Worker): Promise<string> {
  const line = w.lines.shift();
  if (line !== undefined) return Promise.resolve(line);
  return new Promise((resolve, reject) => {
    const onExit = (): void => reject(new Error('a worker process exited'));
    w.child.once('exit', onExit);
    w.waiter = (l) => {
      w.child.off('exit', onExit);
      resolve(l);
    };
  });
}

function collectLines(child: ChildProcess): Worker {
  const w: Worker = { child, lines: [] };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const waiter = w.waiter;
    w.waiter = undefined;
    if (waiter) waiter(line);
    else w.lines.push(line);
  });
  return w;
}

async function countOf(w: Worker): Promise<number> {
  w.child.stdin!.write('count\n');
  return (JSON.parse(await nextLine(w)) as { roundTrips: number }).roundTrips;
}

export async function main(argv: string[]): Promise<void> {
  const values = stringOptions(argv, ['executions', 'in-flight', 'slots'], USAGE);
  const s = {
    executions: intOption(values.executions, 2_000, 'executions'),
    inFlight: intOption(values['in-flight'], 100, 'in-flight'),
    slots: intOption(values.slots, 2, 'slots'),
    warmup: 300,
  };
  const started = new Date();
  const progress = new Progress();
  const cleanup = new Cleanup();
  const report = new Report();
  const disarm = guardRun(progress, cleanup, 20 * 60_000);
  const url = databaseUrl();
  try {
    const sizes: Size[] = [];
    for (const n of SIZES) sizes.push(await runSize(n, s, url, progress, cleanup));
    for (const z of sizes) {
      report.metric(`scaleout_throughput_${z.workers}w`, z.throughput, 'executions/s');
      report.metric(
        `scaleout_round_trips_per_invocation_${z.workers}w`,
        z.roundTripsPerInvocation,
        'round trips',
      );
    }
    for (const line of barChart(
      sizes.map((z) => ({
        label: `${z.workers} worker${z.workers > 1 ? 's' : ''}`,
        value: Math.round(z.throughput),
      })),
      'executions/s',
    ))
      progress.info(`  ${line}`);
    for (const line of barChart(
      sizes.map((z) => ({
        label: `${z.workers} worker${z.workers > 1 ? 's' : ''}`,
        value: Number(z.roundTripsPerInvocation.toFixed(2)),
      })),
      'round trips per invocation',
    ))
      progress.info(`  ${line}`);
    const first = sizes[0]!;
    const last = sizes[sizes.length - 1]!;
    report.ratio(
      'scaleout_round_trips_4w_vs_1w',
      last.roundTripsPerInvocation / first.roundTripsPerInvocation,
    );
    report.ratio('scaleout_throughput_4w_vs_1w', last.throughput / first.throughput);
    report.detail('sizes', sizes);
    report.detail('server', await serverInfo(url));
    report.write(fileURLToPath(new URL('./results/scaleout.json', import.meta.url)), {
      benchmark: 'scaleout',
      args: argv,
      date: started.toISOString(),
      durationSeconds: Number(((Date.now() - started.getTime()) / 1000).toFixed(1)),
      machine: machineInfo(),
      settings: s,
      method: {
        workflow: 'three sequential no-op function steps (the workflow benchmark subject)',
        topology:
          'one engine process (the benchmark, its runtime serving no pool) and N worker processes, each a function runtime with the given slots, all on one PostgreSQL schema',
        throughput: `${s.executions} executions, ${s.inFlight} in flight, after ${s.warmup} unmeasured ones`,
        roundTrips:
          'statements sent on every process pooled connections during the measured run, over the invocations run (background work included)',
      },
    });
  } finally {
    await cleanup.runAll();
    disarm();
  }
}

async function runSize(
  n: number,
  s: { executions: number; inFlight: number; slots: number; warmup: number },
  url: string,
  progress: Progress,
  cleanup: Cleanup,
): Promise<Size> {
  const dir = mkdtempSync(join(tmpdir(), 'cosmos-bench-scaleout-'));
  const removeDir = cleanup.add(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  const schema = uniqueSchema(`bench_scaleout_${n}`);
  const drop = cleanup.add(`drop schema ${schema}`, () => dropSchema(url, schema));
  const store = (await openStore({ kind: 'postgres', url, schema, poolSize: 10 })) as PostgresStore;
  const closeStore = cleanup.add('close store', () => store.close());
  const queue = new Queue(store);
  // The engine's node records invocations for the workers and runs none itself.
  const runtime = new FunctionRuntime(queue, { bundleDir: join(dir, 'bundles'), servePools: [] });
  const engine = new WorkflowEngine(queue, runtime);
  const stopEngine = cleanup.add('stop engine', async () => {
    await engine.stop();
    await runtime.stop();
    await queue.close();
  });
  await runtime.register('noop', (await import('./functions/tiny.js')).noop, {
    module: fileURLToPath(new URL('./functions/tiny.ts', import.meta.url)),
  });
  await engine.register('bench.threeSteps', (await import('./functions/three-steps.js')).threeSteps);
  await runtime.start();
  await engine.start();

  progress.start(`${n} worker process${n > 1 ? 'es' : ''}`);
  progress.update('starting');
  const workers: Worker[] = [];
  for (let i = 0; i < n; i++) {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', WORKER, url, schema, String(s.slots), join(dir, `w${i}`)],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
        env: { ...process.env, UV_THREADPOOL_SIZE: String(Math.max(4, s.slots)) },
      },
    );
    cleanup.add(`stop worker ${child.pid}`, () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    workers.push(collectLines(child));
  }
  for (const w of workers) if ((await nextLine(w)) !== 'ready') throw new Error('a worker did not start');

  const { lanes: run } = driveExecutions(engine, 'bench.threeSteps');
  const lanes = (count: number, onDone: (done: number) => void): Promise<void> =>
    run(count, s.inFlight, onDone);
  progress.update(`${s.warmup} warm-up executions`);
  await lanes(s.warmup, () => undefined);
  const before = store.roundTrips + (await Promise.all(workers.map(countOf))).reduce((a, b) => a + b, 0);
  const engineBefore = store.roundTrips;
  const t0 = performance.now();
  await lanes(s.executions, (done) => done % 100 === 0 && progress.update(`${done}/${s.executions}`));
  const seconds = (performance.now() - t0) / 1000;
  const engineTrips = store.roundTrips - engineBefore;
  const after = store.roundTrips + (await Promise.all(workers.map(countOf))).reduce((a, b) => a + b, 0);
  const invocations = s.executions * INVOCATIONS_PER_EXECUTION;
  const size: Size = {
    workers: n,
    throughput: s.executions / seconds,
    invocationsPerSecond: invocations / seconds,
    roundTrips: after - before,
    roundTripsPerInvocation: (after - before) / invocations,
    engineRoundTripsPerInvocation: engineTrips / invocations,
  };
  progress.done(
    `${Math.round(size.throughput)} executions/s, ${size.roundTripsPerInvocation.toFixed(2)} round trips per invocation`,
  );
  for (const w of workers) w.child.stdin!.write('stop\n');
  await Promise.all(
    workers.map((w) => new Promise((r) => (w.child.exitCode !== null ? r(null) : w.child.once('exit', r)))),
  );
  await stopEngine();
  await closeStore();
  await drop();
  await removeDir();
  return size;
}
