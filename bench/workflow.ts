import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FunctionRuntime } from '../src/functions/runtime.js';
import { Queue } from '../src/queue/queue.js';
import { openStore } from '../src/store/open.js';
import { WorkflowEngine } from '../src/workflow/engine.js';
import type { StoreOptions } from '../src/config.js';
import { intOption, stringOptions } from './lib/args.js';
import { barChart } from './lib/chart.js';
import { Cleanup } from './lib/cleanup.js';
import { driveExecutions } from './lib/drive.js';
import { runDbosWorkflows } from './lib/dbos-peer.js';
import { guardRun } from './lib/guard.js';
import { machineInfo } from './lib/machine.js';
import { databaseUrl, dropSchema, serverInfo, uniqueSchema } from './lib/pg.js';
import { Progress } from './lib/progress.js';
import { Report } from './lib/report.js';
import { median, summarize, timedRounds, type Summary } from './lib/stats.js';

const USAGE = `usage: npm run bench -- workflow [options]
  --single <n>       executions started alone, one at a time, per system (default 200)
  --executions <n>   executions for the throughput run (default 2000)
  --in-flight <n>    executions in flight during the throughput run (default 50)`;

interface Settings {
  single: number;
  executions: number;
  inFlight: number;
  warmup: number;
  /** Unmeasured executions with `inFlight` in flight before the throughput run, for every system. */
  throughputWarmup: number;
  /**
   * Throughput rounds of `executions` each, for every system; the median is reported. One round of 2,000
   * lasts about a second for Cosmos, and on this 2-core VM one round in five or so ran at 60% of the
   * others (the database's own background work, a major GC): the median keeps one such round from
   * deciding the ratio, for either system.
   */
  throughputRounds: number;
}

function parseSettings(argv: string[]): Settings {
  const values = stringOptions(argv, ['single', 'executions', 'in-flight'], USAGE);
  return {
    single: intOption(values.single, 200, 'single'),
    executions: intOption(values.executions, 2_000, 'executions'),
    inFlight: intOption(values['in-flight'], 50, 'in-flight'),
    warmup: 20,
    throughputWarmup: 500,
    throughputRounds: 3,
  };
}

interface Figures {
  single: Summary;
  /** The median of the rounds. */
  throughput: number;
  rounds: number[];
}

export async function main(argv: string[]): Promise<void> {
  const s = parseSettings(argv);
  const report = new Report();
  const progress = new Progress();
  const cleanup = new Cleanup();
  const disarm = guardRun(progress, cleanup, 15 * 60_000);
  const started = new Date();
  const url = databaseUrl();
  try {
    const cosmosPg = await cosmos('postgres', s, progress, cleanup);
    progress.start('DBOS Transact 5: three-step workflows');
    const dbos = await runDbosWorkflows({
      url,
      single: s.single,
      executions: s.executions,
      inFlight: s.inFlight,
      warmup: s.warmup,
      throughputWarmup: s.throughputWarmup,
      throughputRounds: s.throughputRounds,
      cleanup,
      onProgress: (m) => progress.update(m),
    });
    const dbosSingle = summarize(dbos.single);
    progress.done(`p50 ${dbosSingle.p50.toFixed(2)} ms, ${Math.round(dbos.throughput)} executions/s`);
    const cosmosSqlite = await cosmos('sqlite', s, progress, cleanup);

    const all: [string, Figures][] = [
      ['Cosmos PostgreSQL', cosmosPg],
      ['DBOS Transact 5', { single: dbosSingle, throughput: dbos.throughput, rounds: dbos.rounds }],
      ['Cosmos SQLite', cosmosSqlite],
    ];
    for (const [label, key] of [
      ['Cosmos PostgreSQL', 'cosmos_postgres'],
      ['DBOS Transact 5', 'dbos'],
      ['Cosmos SQLite', 'cosmos_sqlite'],
    ] as const) {
      const f = all.find(([l]) => l === label)![1];
      report.metric(`workflow_${key}_p50`, f.single.p50, 'ms');
      report.metric(`workflow_${key}_p99`, f.single.p99, 'ms');
      report.metric(`workflow_${key}_throughput`, f.throughput, 'executions/s');
    }
    for (const line of barChart(
      all.map(([label, f]) => ({ label, value: Math.round(f.throughput) })),
      'executions/s',
    ))
      progress.info(`  ${line}`);
    for (const line of barChart(
      all.map(([label, f]) => ({ label, value: Math.round(f.single.p50 * 1000) })),
      'µs p50 (single execution)',
    ))
      progress.info(`  ${line}`);
    report.detail('dbos', { settings: dbos.settings, single: dbosSingle, rounds: dbos.rounds });
    report.detail('cosmos', { postgres: cosmosPg, sqlite: cosmosSqlite });
    report.detail('server', await serverInfo(url));
    report.ratio('workflow_p50_vs_dbos', cosmosPg.single.p50 / dbosSingle.p50);
    report.ratio('workflow_throughput_vs_dbos', cosmosPg.throughput / dbos.throughput);
    report.write(fileURLToPath(new URL('./results/workflow.json', import.meta.url)), {
      benchmark: 'workflow',
      args: argv,
      date: started.toISOString(),
      durationSeconds: Number(((Date.now() - started.getTime()) / 1000).toFixed(1)),
      machine: machineInfo(),
      settings: s,
      method: {
        workflow:
          'three sequential no-op function steps; Cosmos: a rule per step invoking a function on a worker thread, DBOS: three registered steps',
        single:
          'from start until the result is durable and known to the caller, one execution at a time, after warm-up',
        throughput: `${s.executions} executions, ${s.inFlight} in flight (a new one starts when one finishes), after ${s.throughputWarmup} unmeasured ones the same way; the median of ${s.throughputRounds} such rounds`,
        database: 'the same PostgreSQL server; DBOS in a database of its own, Cosmos in a schema of its own',
      },
    });
  } finally {
    await cleanup.runAll();
    disarm();
  }
}

/** Cosmos on one store: engine and function runtime in one process, as `cosmos dev` and `cosmos start` run. */
async function cosmos(
  kind: 'postgres' | 'sqlite',
  s: Settings,
  progress: Progress,
  cleanup: Cleanup,
): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), `cosmos-bench-workflow-${kind}-`));
  cleanup.add(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  const url = databaseUrl();
  const schema = uniqueSchema('bench_workflow');
  const options: StoreOptions =
    kind === 'sqlite' ? { kind, path: join(dir, 'cosmos.db') } : { kind, url, schema, poolSize: 10 };
  if (kind === 'postgres') cleanup.add(`drop schema ${schema}`, () => dropSchema(url, schema));
  const store = await openStore(options);
  const closeStore = cleanup.add('close store', () => store.close());
  const queue = new Queue(store);
  const runtime = new FunctionRuntime(queue, {
    bundleDir: join(dir, 'bundles'),
    warm: { default: availableParallelism() },
  });
  const engine = new WorkflowEngine(queue, runtime);
  const stop = cleanup.add('stop engine and runtime', async () => {
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
  const { one, lanes: run } = driveExecutions(engine, 'bench.threeSteps');
  const label = kind === 'postgres' ? 'Cosmos PostgreSQL' : 'Cosmos SQLite';
  progress.start(`${label}: ${s.single} executions started alone`);
  for (let i = 0; i < s.warmup; i++) await one();
  const times: number[] = [];
  for (let i = 0; i < s.single; i++) {
    const t0 = performance.now();
    await one();
    times.push(performance.now() - t0);
    if (i % 20 === 0) progress.update(`${i}/${s.single}`);
  }
  const single = summarize(times);
  progress.done(`p50 ${single.p50.toFixed(2)} ms, p99 ${single.p99.toFixed(2)} ms`);
  const lanes = (count: number): Promise<void> => run(count, s.inFlight);
  progress.start(`${label}: ${s.throughputWarmup} warm-up executions, ${s.inFlight} in flight`);
  await lanes(s.throughputWarmup);
  progress.done('');
  const rounds = await timedRounds(s.throughputRounds, s.executions, lanes, (r, rate) => {
    if (rate !== undefined) return progress.done(`${rate} executions/s`);
    progress.start(
      `${label}: ${s.executions} executions, ${s.inFlight} in flight (round ${r + 1}/${s.throughputRounds})`,
    );
  });
  await stop();
  await closeStore();
  return { single, throughput: median(rounds), rounds };
}
