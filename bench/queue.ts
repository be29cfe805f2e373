import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { StoreOptions } from '../src/config.js';
import { Queue } from '../src/queue/queue.js';
import { openStore } from '../src/store/open.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { Store } from '../src/store/store.js';
import type { EnqueueInput, LeasedMessage } from '../src/types.js';
import { intOption } from './lib/args.js';
import { Cleanup } from './lib/cleanup.js';
import { guardRun } from './lib/guard.js';
import { barChart } from './lib/chart.js';
import { cpuMark } from './lib/cpu.js';
import { machineInfo } from './lib/machine.js';
import { drainGraphileWorker, drainPgBoss, drainResult, type DrainResult } from './lib/peers.js';
import {
  checkpoint,
  databaseUrl,
  dropSchema,
  prepareForClock,
  serverInfo,
  uniqueSchema,
  vacuumAnalyzeSchema,
  walBytesSince,
  walPosition,
} from './lib/pg.js';
import { Progress } from './lib/progress.js';
import { Report } from './lib/report.js';
import { median, since, summarize } from './lib/stats.js';
import { Countdown, within } from './lib/wait.js';

const PHASES = [
  'drain-postgres',
  'drain-postgres-work',
  'drain-pgboss',
  'drain-graphile',
  'backlog-postgres',
  'drain-sqlite',
  'backlog-sqlite',
] as const;
type Phase = (typeof PHASES)[number];

const DRAIN_LABELS: Record<Phase, string> = {
  'drain-postgres': 'Cosmos PostgreSQL',
  'drain-postgres-work': 'Cosmos PostgreSQL work()',
  'drain-pgboss': 'pg-boss 10',
  'drain-graphile': 'graphile-worker 0.17',
  'backlog-postgres': 'backlog PostgreSQL',
  'drain-sqlite': 'Cosmos SQLite',
  'backlog-sqlite': 'backlog SQLite',
};

const DEADLINE_MS = 15 * 60_000;

interface Consumers {
  /** `work`: Queue.work() consumers; `batch`: loops of dequeue({max}) and completeMany() on the facade. */
  mode: 'work' | 'batch';
  consumers: number;
  batchSize: number;
  /** work mode only: messages in flight per consumer. */
  concurrency: number;
}

interface Settings {
  phases: Phase[];
  /** Messages per drain. */
  jobs: number;
  /** Each drain runs this many times; the median is reported. */
  rounds: number;
  /** Messages per bulk enqueue call, and how many such calls run at once. */
  chunk: number;
  enqueueParallel: number;
  /** Cosmos consumers on PostgreSQL: `work()` loops sharing one Queue and one pool. */
  pg: Consumers & { poolSize: number };
  /** The same store and pool drained by Queue.work() consumers, reported alongside for comparison. */
  pgWork: { consumers: number; batchSize: number };
  sqlite: Consumers;
  backlog: { small: number; large: number; samples: number; warmup: number; max: number; vacuum: boolean };
  /** graphile-worker's jobs in flight and local queue size (its batched fetch). */
  graphile: { concurrency: number; localQueueSize: number };
  timeoutMs: number;
}

const USAGE = `usage: npm run bench -- queue [options]
  --only <phases>      comma-separated subset of: ${PHASES.join(', ')}
  --jobs <n>           messages per drain (default 100000)
  --rounds <n>         runs of each drain, median reported (default 3)
  --mode work|batch    Cosmos PostgreSQL consumers: Queue.work(), or dequeue/completeMany loops
  --consumers <n>      Cosmos PostgreSQL consumers
  --batch-size <n>     Cosmos PostgreSQL messages per dequeue
  --concurrency <n>    Cosmos PostgreSQL messages in flight per consumer
  --pool-size <n>      Cosmos PostgreSQL pool size
  --sqlite-mode, --sqlite-consumers, --sqlite-batch-size   the same for the SQLite store
  --graphile-concurrency <n>   graphile-worker jobs in flight (default 50)
  --graphile-local-queue <n>   graphile-worker localQueue.size (default 500)
  --backlog <n>        large backlog (default 1000000)
  --samples <n>        timed dequeues per backlog size (default 200)
  --no-vacuum          skip VACUUM ANALYZE after the PostgreSQL bulk loads`;

function parseSettings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      only: { type: 'string' },
      jobs: { type: 'string' },
      rounds: { type: 'string' },
      consumers: { type: 'string' },
      mode: { type: 'string' },
      'sqlite-mode': { type: 'string' },
      'sqlite-consumers': { type: 'string' },
      'sqlite-batch-size': { type: 'string' },
      'batch-size': { type: 'string' },
      concurrency: { type: 'string' },
      'pool-size': { type: 'string' },
      backlog: { type: 'string' },
      samples: { type: 'string' },
      'no-vacuum': { type: 'boolean' },
      'graphile-concurrency': { type: 'string' },
      'graphile-local-queue': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const int = intOption;
  const mode = (v: string | undefined, name: string): Consumers['mode'] => {
    if (v === undefined || v === 'batch') return 'batch';
    if (v === 'work') return 'work';
    throw new Error(`--${name} must be work or batch, got "${v}"`);
  };
  const phases = values.only === undefined ? [...PHASES] : values.only.split(',').map((p) => p.trim());
  for (const p of phases)
    if (!(PHASES as readonly string[]).includes(p))
      throw new Error(`unknown phase "${p}"; known: ${PHASES.join(', ')}`);
  // pg-boss is given batchSize 1000 by the issue; Cosmos fetches the same.
  const batchSize = int(values['batch-size'], 1000, 'batch-size');
  const sqliteBatch = int(values['sqlite-batch-size'], 500, 'sqlite-batch-size');
  return {
    phases: phases as Phase[],
    jobs: int(values.jobs, 100_000, 'jobs'),
    rounds: int(values.rounds, 3, 'rounds'),
    chunk: 10_000,
    enqueueParallel: 2,
    pg: {
      mode: mode(values.mode, 'mode'),
      consumers: int(values.consumers, 2, 'consumers'),
      batchSize,
      concurrency: int(values.concurrency, batchSize * 2, 'concurrency'),
      poolSize: int(values['pool-size'], 10, 'pool-size'),
    },
    pgWork: { consumers: 2, batchSize: 1000 },
    sqlite: {
      mode: mode(values['sqlite-mode'], 'sqlite-mode'),
      consumers: int(values['sqlite-consumers'], 2, 'sqlite-consumers'),
      batchSize: sqliteBatch,
      concurrency: sqliteBatch * 2,
    },
    backlog: {
      small: 1_000,
      large: int(values.backlog, 1_000_000, 'backlog'),
      samples: int(values.samples, 200, 'samples'),
      warmup: 20,
      max: 10,
      vacuum: !values['no-vacuum'],
    },
    // Of 10, 50, 100 and 200 jobs in flight, 50 drained fastest here; localQueue.size 1000 or 2000 did not help.
    graphile: {
      concurrency: int(values['graphile-concurrency'], 50, 'graphile-concurrency'),
      localQueueSize: int(values['graphile-local-queue'], 500, 'graphile-local-queue'),
    },
    timeoutMs: 180_000,
  };
}

interface Place {
  options: StoreOptions;
  discard(): Promise<void>;
}

interface Context {
  url: string;
  settings: Settings;
  report: Report;
  progress: Progress;
  cleanup: Cleanup;
  /** A fresh PostgreSQL schema (created by openStore) or SQLite file; `discard` removes it. */
  place(kind: 'postgres' | 'sqlite', label: string, poolSize?: number): Place;
}

export async function main(argv: string[]): Promise<void> {
  const settings = parseSettings(argv);
  const url = databaseUrl();
  const report = new Report();
  const progress = new Progress();
  const cleanup = new Cleanup();
  const disarm = guardRun(progress, cleanup, DEADLINE_MS);

  let places = 0;
  const ctx: Context = {
    url,
    settings,
    report,
    progress,
    cleanup,
    place(kind, label, poolSize = settings.pg.poolSize) {
      if (kind === 'postgres') {
        const schema = uniqueSchema(`bench_cosmos_${label}${places++}`);
        const discard = cleanup.add(`drop schema ${schema}`, () => dropSchema(url, schema));
        return { options: { kind, url, schema, poolSize }, discard };
      }
      const dir = mkdtempSync(join(tmpdir(), `cosmos-bench-${label}-`));
      const discard = cleanup.add(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
      // The store's default synchronous mode is FULL: every commit is durable, as on PostgreSQL.
      return { options: { kind, path: join(dir, 'cosmos.db') }, discard };
    },
  };

  const started = new Date();
  try {
    const server = await serverInfo(url);
    progress.info(`PostgreSQL: ${server.version.split(' on ')[0]}; phases: ${settings.phases.join(', ')}`);
    const drains = await drainRounds(ctx);
    const of = (p: Phase): number | undefined => drains.get(p)?.jobsPerSecond;
    const cosmosPg = of('drain-postgres');
    const cosmosSqlite = of('drain-sqlite');
    const peers: { phase: Phase; jobsPerSecond: number }[] = [];
    for (const phase of ['drain-pgboss', 'drain-graphile'] as const) {
      const jobsPerSecond = of(phase);
      if (jobsPerSecond !== undefined) peers.push({ phase, jobsPerSecond });
    }
    peers.sort((a, b) => b.jobsPerSecond - a.jobsPerSecond);
    const best = peers[0]?.jobsPerSecond;
    if (peers[0]) report.detail('bestPeer', peers[0].phase);
    if (cosmosPg !== undefined) report.metric('queue_drain_cosmos_postgres', cosmosPg, 'jobs/s');
    const cosmosWork = of('drain-postgres-work');
    if (cosmosWork !== undefined) report.metric('queue_drain_cosmos_postgres_work', cosmosWork, 'jobs/s');
    const pgBoss = of('drain-pgboss');
    if (pgBoss !== undefined) report.metric('queue_drain_pgboss', pgBoss, 'jobs/s');
    const graphile = of('drain-graphile');
    if (graphile !== undefined) report.metric('queue_drain_graphile_worker', graphile, 'jobs/s');
    if (cosmosSqlite !== undefined) report.metric('queue_drain_cosmos_sqlite', cosmosSqlite, 'jobs/s');
    if (best !== undefined && cosmosPg !== undefined)
      report.ratio('queue_drain_vs_best_peer', cosmosPg / best);
    if (best !== undefined && cosmosSqlite !== undefined)
      report.ratio('queue_drain_sqlite_vs_best_peer', cosmosSqlite / best);
    const bars = [...drains].map(([phase, r]) => ({ label: DRAIN_LABELS[phase], value: r.jobsPerSecond }));
    if (bars.length > 0) {
      progress.info(
        `no-op drain of ${settings.jobs.toLocaleString('en-US')} jobs, median of ${settings.rounds}:`,
      );
      for (const line of barChart(bars, 'jobs/s')) progress.info(`  ${line}`);
    }

    if (settings.phases.includes('backlog-postgres')) await backlog(ctx, 'postgres');
    if (settings.phases.includes('backlog-sqlite')) await backlog(ctx, 'sqlite');

    const resultsPath = fileURLToPath(new URL('./results/queue.json', import.meta.url));
    report.write(resultsPath, {
      benchmark: 'queue',
      // Runs with options (a subset of phases, other sizes) also land here: the arguments say which it was.
      args: argv,
      date: started.toISOString(),
      durationSeconds: Number(((Date.now() - started.getTime()) / 1000).toFixed(1)),
      machine: machineInfo(),
      postgres: server,
      sqlite: { version: sqliteLibrary ?? 'not run', synchronous: 'FULL', journalMode: 'WAL' },
      settings: {
        ...settings,
        drainClock: 'from the first handler call until every job is recorded done in the database',
        drainFigure: `median of ${settings.rounds} rounds, systems in rotating order`,
        beforeEachDrain:
          "bulk enqueue, then VACUUM ANALYZE of every table in the system's schema, then CHECKPOINT (all systems)",
      },
    });
    progress.info(`results written to ${resultsPath}`);
  } finally {
    await cleanup.runAll();
    disarm();
  }
}

interface Contender {
  phase: Phase;
  run(round: number): Promise<DrainResult>;
}

/**
 * Runs every selected drain `rounds` times, in an order that rotates each round so no system always runs
 * first (or right after the heaviest one); returns each system's median round. The machine is shared, so
 * one round can be disturbed: the median is robust to that and all rounds are kept in the JSON.
 */
async function drainRounds(ctx: Context): Promise<Map<Phase, DrainResult>> {
  const { settings, url, progress, cleanup } = ctx;
  const peer = (name: string, round: number) => ({
    url,
    schema: uniqueSchema(`bench_${name}${round}`),
    jobs: settings.jobs,
    chunk: settings.chunk,
    timeoutMs: settings.timeoutMs,
    progress,
    cleanup,
  });
  const all: Contender[] = [
    { phase: 'drain-postgres', run: () => drainCosmos(ctx, 'postgres', settings.pg) },
    {
      phase: 'drain-postgres-work',
      run: () =>
        drainCosmos(ctx, 'postgres', {
          ...settings.pg,
          mode: 'work',
          batchSize: settings.pgWork.batchSize,
          concurrency: settings.pgWork.batchSize * 2,
          consumers: settings.pgWork.consumers,
        }),
    },
    {
      phase: 'drain-pgboss',
      run: (r) => drainPgBoss({ ...peer('pgboss', r), workers: 10, batchSize: 1000 }),
    },
    {
      phase: 'drain-graphile',
      run: (r) => drainGraphileWorker({ ...peer('graphile', r), ...settings.graphile }),
    },
    { phase: 'drain-sqlite', run: () => drainCosmos(ctx, 'sqlite', settings.sqlite) },
  ];
  const contenders = all.filter((c) => settings.phases.includes(c.phase));
  const rounds = new Map<Phase, DrainResult[]>(contenders.map((c) => [c.phase, []]));
  for (let r = 0; r < settings.rounds && contenders.length > 0; r++) {
    const order = contenders.map((_, i) => contenders[(i + r) % contenders.length]!);
    progress.info(`drain round ${r + 1}/${settings.rounds}: ${order.map((c) => c.phase).join(', ')}`);
    for (const c of order) {
      const result = await c.run(r);
      const wal = result.walBytesPerJob === undefined ? '' : `, WAL ${result.walBytesPerJob} B/job`;
      progress.info(
        `${c.phase} round ${r + 1}: ${result.jobsPerSecond} jobs/s (machine ${result.cpu.machineBusyPercent}% ` +
          `busy, ${result.cpu.machineCoreUsPerJob} µs CPU/job of which this process ` +
          `${Math.round((result.cpu.processCoreMs * 1000) / result.jobs)}${wal})`,
      );
      rounds.get(c.phase)!.push(result);
    }
  }
  const medians = new Map<Phase, DrainResult>();
  for (const [phase, results] of rounds) {
    const sorted = [...results].sort((a, b) => a.jobsPerSecond - b.jobsPerSecond);
    const mid = sorted[Math.floor((sorted.length - 1) / 2)]!;
    medians.set(phase, mid);
    ctx.report.detail(phase, {
      medianJobsPerSecond: mid.jobsPerSecond,
      roundsJobsPerSecond: results.map((x) => x.jobsPerSecond),
      rounds: results,
    });
  }
  return medians;
}

/** Enqueues `count` messages in bulk: `parallel` calls of `chunk` messages in flight at once. */
async function fill(ctx: Context, queue: Queue, name: string, count: number, label: string): Promise<number> {
  const { chunk, enqueueParallel } = ctx.settings;
  ctx.progress.start(`${label}: enqueue ${count}`);
  const t0 = performance.now();
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const from = next;
      const n = Math.min(chunk, count - from);
      next += n;
      const batch: EnqueueInput[] = Array.from({ length: n }, (_, k) => ({
        queue: name,
        payload: { n: from + k },
      }));
      await queue.enqueueMany(batch);
      done += n;
      ctx.progress.update(`${done}/${count}`);
    }
  };
  await Promise.all(Array.from({ length: enqueueParallel }, worker));
  const ms = since(t0);
  ctx.progress.done(`${Math.round((count / ms) * 1000)} msg/s`);
  return ms;
}

/**
 * Cosmos no-op drain through the public facade, by `batchLoop`s (mode batch) or by `Queue.work()` consumers
 * (mode work), all on one Queue and one store.
 */
async function drainCosmos(
  ctx: Context,
  kind: 'postgres' | 'sqlite',
  cfg: Consumers & { poolSize?: number },
): Promise<DrainResult> {
  const { jobs } = ctx.settings;
  const place = ctx.place(kind, 'drain', cfg.poolSize);
  const options = place.options;
  const store = await openStore(options);
  noteSqliteVersion(store);
  const closeStore = ctx.cleanup.add(`close ${kind} store`, () => store.close());
  const queue = new Queue(store);
  const closeQueue = ctx.cleanup.add('close queue', () => queue.close());
  const name = 'bench';
  const label = `cosmos ${kind}`;
  const enqueueMs = await fill(ctx, queue, name, jobs, label);
  if (options.kind === 'postgres') await prepareForClock(ctx.url, options.schema!);

  const how =
    cfg.mode === 'work'
      ? `${cfg.consumers} work() consumers, batchSize ${cfg.batchSize}, concurrency ${cfg.concurrency}`
      : `${cfg.consumers} dequeue/completeMany loops, batch ${cfg.batchSize}`;
  ctx.progress.start(`${label}: drain ${jobs} (${how})`);
  const errors: unknown[] = [];
  const seen = new Countdown(jobs);
  const handler = (): void => {
    seen.hit();
    ctx.progress.update(`${seen.count}/${jobs}`);
  };
  const wal = options.kind === 'postgres' ? await walPosition(ctx.url) : undefined;
  const started = cpuMark();
  if (cfg.mode === 'work') {
    for (let c = 0; c < cfg.consumers; c++)
      queue.work(name, handler, {
        batchSize: cfg.batchSize,
        concurrency: cfg.concurrency,
        onError: (e) => errors.push(e),
      });
    await within(seen.done, ctx.settings.timeoutMs, `${label} drain`);
    // close() stops the consumers once their handlers are done and flushes the batched completions: after
    // it, every completion is committed.
    await closeQueue();
  } else {
    await within(
      Promise.all(
        Array.from({ length: cfg.consumers }, () => batchLoop(queue, name, cfg.batchSize, handler, seen)),
      ),
      ctx.settings.timeoutMs,
      `${label} drain`,
    );
    await closeQueue();
  }
  const ended = performance.now();
  const walBytes = wal === undefined ? undefined : await walBytesSince(ctx.url, wal);
  ctx.progress.done();
  const counts = await queue.counts(name);
  await closeStore();
  await place.discard();
  if (errors.length > 0) throw new Error(`${label}: consumer errors, first: ${String(errors[0])}`);
  if (counts.completed !== jobs || seen.count !== jobs)
    throw new Error(`${label}: ${seen.count} handled, ${counts.completed} completed, expected ${jobs}`);
  return drainResult(
    jobs,
    { started, first: seen.first, ended, enqueueMs, walBytes },
    { store: kind, ...cfg },
  );
}

/**
 * A batch consumer on the public facade: lease `batchSize` messages, run the handler on each, complete them
 * all in one call. The next dequeue is already in flight while a batch is handled and completed, so the
 * connection never idles; the loop ends once every message has been handled and its completion committed.
 */
async function batchLoop(
  queue: Queue,
  name: string,
  batchSize: number,
  handler: () => void,
  seen: Countdown,
): Promise<void> {
  const next = (): Promise<LeasedMessage[]> => queue.dequeue({ queue: name, max: batchSize });
  let pending = next();
  try {
    for (;;) {
      const batch = await pending;
      if (batch.length === 0) {
        if (seen.count >= seen.total) return;
        // Another loop holds the last leases: wait for its completion rather than spin.
        await queue.waitForWork(name, { timeoutMs: 50 });
        pending = next();
        continue;
      }
      pending = next();
      for (const _ of batch) handler();
      const done = await queue.completeMany(batch.map((m) => m.lease));
      if (done.length !== batch.length) throw new Error(`lost ${batch.length - done.length} leases`);
    }
  } catch (error) {
    // The prefetched dequeue may fail too; the first error is the one to report.
    pending.catch(() => undefined);
    throw error;
  }
}

/**
 * Dequeue latency against a constant backlog: each sample times one `dequeue({max})`, then (untimed)
 * completes what it got and enqueues as many new messages, so the pending count never moves. The small and
 * the large backlog live in two stores of their own and are sampled alternately, so both see the same
 * machine: on a shared machine, commit latency drifts more within a minute than any backlog effect.
 */
async function backlog(ctx: Context, kind: 'postgres' | 'sqlite'): Promise<void> {
  const b = ctx.settings.backlog;
  const suffix = kind === 'postgres' ? '' : '_sqlite';
  const name = 'bench';
  const label = `cosmos ${kind} backlog`;
  const vacuum = kind === 'postgres' && b.vacuum;
  if (vacuum)
    ctx.report.note(
      'postgres backlog: VACUUM ANALYZE of the store tables after each bulk load, as autovacuum does in a deployment',
    );

  const open = async (pending: number) => {
    const place = ctx.place(kind, `backlog${pending}_`, 2);
    const store = await openStore(place.options);
    noteSqliteVersion(store);
    const closeStore = ctx.cleanup.add(`close ${kind} store`, () => store.close());
    const queue = new Queue(store);
    await fill(ctx, queue, name, pending, `${label} ${pending}`);
    if (vacuum && place.options.kind === 'postgres') {
      ctx.progress.start(`${label} ${pending}: VACUUM ANALYZE`);
      await vacuumAnalyzeSchema(ctx.url, place.options.schema!);
      ctx.progress.done();
    }
    const close = async (): Promise<void> => {
      await queue.close();
      await closeStore();
      await place.discard();
    };
    return { pending, queue, close, samples: [] as number[] };
  };
  const small = await open(b.small);
  const large = await open(b.large);

  const sample = async (q: typeof small, keep: boolean): Promise<void> => {
    const t0 = performance.now();
    const got = await q.queue.dequeue({ queue: name, max: b.max });
    const ms = since(t0);
    if (got.length !== b.max) throw new Error(`${label}: dequeue returned ${got.length}, expected ${b.max}`);
    await q.queue.completeMany(got.map((m) => m.lease));
    await q.queue.enqueueMany(got.map((m) => ({ queue: name, payload: m.payload })));
    if (keep) q.samples.push(ms);
  };
  ctx.progress.start(
    `${label}: ${b.warmup} + ${b.samples} dequeues each at ${b.small} and ${b.large} pending`,
  );
  if (kind === 'postgres') await checkpoint(ctx.url);
  const rounds = b.warmup + b.samples;
  for (let i = 0; i < rounds; i++) {
    // Alternating which goes first keeps any effect of the order out of the comparison.
    const pair = i % 2 === 0 ? [small, large] : [large, small];
    for (const q of pair) await sample(q, i >= b.warmup);
    ctx.progress.update(`${i + 1}/${rounds}`);
  }
  const p50Small = median(small.samples);
  const p50Large = median(large.samples);
  ctx.progress.done(`p50 ${p50Small.toFixed(3)} ms vs ${p50Large.toFixed(3)} ms`);
  for (const q of [small, large]) {
    const counts = await q.queue.counts(name);
    await q.close();
    if (counts.pending !== q.pending)
      throw new Error(`${label}: ${counts.pending} pending, expected ${q.pending}`);
  }

  ctx.report.detail(`backlog-${kind}`, {
    pendingSmall: b.small,
    pendingLarge: b.large,
    dequeueMax: b.max,
    warmup: b.warmup,
    sampling: 'alternating between the two stores',
    vacuumAnalyze: vacuum,
    smallMs: summarize(small.samples),
    largeMs: summarize(large.samples),
  });
  ctx.report.metric(`queue_dequeue_1k_p50${suffix}`, p50Small, 'ms');
  ctx.report.metric(`queue_dequeue_1m_p50${suffix}`, p50Large, 'ms');
  ctx.report.ratio(`queue_dequeue_1m_vs_1k${suffix}`, p50Large / p50Small);
}

/** The SQLite library the store runs on, read through the store itself (it alone picks the driver). */
let sqliteLibrary: string | undefined;
function noteSqliteVersion(store: Store): void {
  if (!(store instanceof SqliteStore)) return;
  sqliteLibrary ??= (store.db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
}
