import { readFileSync } from 'node:fs';
import { Logger, makeWorkerUtils, run, type AddJobsJobSpec } from 'graphile-worker';
import pg from 'pg';
import PgBoss from 'pg-boss';
import type { Cleanup } from './cleanup.js';
import { cpuMark, cpuSince, type CpuMark, type CpuUse } from './cpu.js';
import { connect, dropSchema, prepareForClock, walBytesSince, walPosition } from './pg.js';
import type { Progress } from './progress.js';
import { Countdown, pollUntil, within } from './wait.js';

/** One no-op drain: `jobs` were enqueued before the clock started; the clock stops when all are done. */
export interface DrainResult {
  jobs: number;
  /** From the first handler call until every job is recorded as done in the database. */
  ms: number;
  jobsPerSecond: number;
  /** Includes the consumer's start-up (connecting, first fetch): for reference only. */
  msWithStartup: number;
  enqueueMs: number;
  /** From consumer start to the end of the drain. */
  cpu: CpuUse & { machineCoreUsPerJob: number };
  /** WAL written by the whole server during the drain, per job (PostgreSQL only). */
  walBytesPerJob?: number;
  settings: Record<string, unknown>;
}

export interface PeerDrainOptions {
  url: string;
  schema: string;
  jobs: number;
  /** Jobs per bulk insert call. */
  chunk: number;
  timeoutMs: number;
  progress: Progress;
  cleanup: Cleanup;
}

export function drainResult(
  jobs: number,
  t: { started: CpuMark; first: number; ended: number; enqueueMs: number; walBytes?: number },
  settings: Record<string, unknown>,
): DrainResult {
  const ms = t.ended - t.first;
  const cpu = cpuSince(t.started);
  return {
    jobs,
    ms: Number(ms.toFixed(1)),
    jobsPerSecond: Math.round((jobs / ms) * 1000),
    msWithStartup: Number((t.ended - t.started.at).toFixed(1)),
    enqueueMs: Number(t.enqueueMs.toFixed(1)),
    cpu: { ...cpu, machineCoreUsPerJob: Math.round((cpu.machineCoreMs * 1000) / jobs) },
    ...(t.walBytes !== undefined && { walBytesPerJob: Math.round(t.walBytes / jobs) }),
    settings,
  };
}

/** Inserts `jobs` jobs through `insert`, `chunk` at a time; returns the milliseconds it took. */
async function bulk(
  o: PeerDrainOptions,
  label: string,
  insert: (from: number, n: number) => Promise<unknown>,
): Promise<number> {
  o.progress.start(`${label}: enqueue ${o.jobs}`);
  const t0 = performance.now();
  for (let i = 0; i < o.jobs; i += o.chunk) {
    const n = Math.min(o.chunk, o.jobs - i);
    await insert(i, n);
    o.progress.update(`${i + n}/${o.jobs}`);
  }
  const ms = performance.now() - t0;
  o.progress.done(`${Math.round((o.jobs / ms) * 1000)} jobs/s`);
  return ms;
}

/**
 * pg-boss 10 in its fastest documented setting (SPEC §13): `batchSize` 1000, one `work()` per worker, and the
 * shortest polling interval it accepts (0.5 s; a worker sleeps out the interval after every fetch).
 * Cron scheduling and supervision are off so they do not compete with the drain.
 */
export async function drainPgBoss(
  o: PeerDrainOptions & { workers: number; batchSize: number },
): Promise<DrainResult> {
  const name = 'bench';
  const label = 'pg-boss';
  const settings = {
    version: peerVersion('pg-boss'),
    workers: o.workers,
    batchSize: o.batchSize,
    pollingIntervalSeconds: 0.5,
    poolMax: 10,
    supervise: false,
    schedule: false,
  };
  const drop = o.cleanup.add(`drop schema ${o.schema}`, () => dropSchema(o.url, o.schema));
  const boss = new PgBoss({
    connectionString: o.url,
    schema: o.schema,
    max: settings.poolMax,
    supervise: false,
    schedule: false,
    migrate: true,
    application_name: 'cosmos-bench-pgboss',
  });
  const errors: unknown[] = [];
  boss.on('error', (e) => errors.push(e));
  await boss.start();
  const stop = o.cleanup.add('stop pg-boss', () => boss.stop({ graceful: false, close: true, wait: true }));
  await boss.createQueue(name);
  const enqueueMs = await bulk(o, label, (from, n) =>
    boss.insert(Array.from({ length: n }, (_, k) => ({ name, data: { n: from + k } }))),
  );
  await prepareForClock(o.url, o.schema);
  // Connected before the clock starts and idle until the tail, so polling adds no connection set-up.
  const admin = await connect(o.url);
  const closeAdmin = o.cleanup.add('close poll connection', () => admin.end());

  o.progress.start(`${label}: drain ${o.jobs} (${o.workers} workers, batchSize ${o.batchSize})`);
  const seen = new Countdown(o.jobs);
  const wal = await walPosition(o.url);
  const started = cpuMark();
  for (let w = 0; w < o.workers; w++) {
    await boss.work(
      name,
      { batchSize: o.batchSize, pollingIntervalSeconds: settings.pollingIntervalSeconds },
      (jobs) => {
        seen.hit(jobs.length);
        o.progress.update(`${seen.count}/${o.jobs}`);
        return Promise.resolve();
      },
    );
  }
  await within(seen.done, o.timeoutMs, `${label} drain`);
  // pg-boss completes a batch after its handler returns, without awaiting it: the drain ends when the
  // database says so.
  const completed = `SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(o.schema)}.job
    WHERE name = $1 AND state = 'completed'`;
  await pollUntil(() => admin.query<{ n: number }>(completed, [name]).then((r) => r.rows[0]!.n >= o.jobs), {
    timeoutMs: 30_000,
    intervalMs: 5,
    what: `${label} completions`,
  });
  const ended = performance.now();
  const walBytes = await walBytesSince(o.url, wal);
  o.progress.done();
  await closeAdmin();
  await boss.offWork(name);
  await stop();
  await drop();
  if (errors.length > 0) throw new Error(`${label} reported errors: ${String(errors[0])}`);
  if (seen.count !== o.jobs) throw new Error(`${label} handled ${seen.count} jobs, expected ${o.jobs}`);
  return drainResult(o.jobs, { started, first: seen.first, ended, enqueueMs, walBytes }, settings);
}

/**
 * graphile-worker 0.17 in its fastest documented setting (SPEC §13 and its performance guide): concurrency
 * 10, a local queue of 500 jobs fetched per round trip, and completions batched with
 * `completeJobBatchDelay` 0.
 */
export async function drainGraphileWorker(
  o: PeerDrainOptions & { concurrency: number; localQueueSize: number },
): Promise<DrainResult> {
  const label = 'graphile-worker';
  const settings = {
    version: peerVersion('graphile-worker'),
    concurrency: o.concurrency,
    'preset.worker.localQueue.size': o.localQueueSize,
    'preset.worker.completeJobBatchDelay': 0,
    maxPoolSize: 10,
  };
  const logger = new Logger(() => () => undefined);
  const drop = o.cleanup.add(`drop schema ${o.schema}`, () => dropSchema(o.url, o.schema));
  const utils = await makeWorkerUtils({ connectionString: o.url, schema: o.schema, logger });
  const release = o.cleanup.add('release graphile-worker utils', () => utils.release());
  await utils.migrate();
  const enqueueMs = await bulk(o, label, (from, n) => {
    const specs: AddJobsJobSpec[] = Array.from({ length: n }, (_, k) => ({
      identifier: 'noop',
      payload: { n: from + k },
    }));
    return utils.addJobs(specs);
  });
  await prepareForClock(o.url, o.schema);
  const admin = await connect(o.url);
  const closeAdmin = o.cleanup.add('close poll connection', () => admin.end());

  o.progress.start(
    `${label}: drain ${o.jobs} (concurrency ${o.concurrency}, localQueue.size ${o.localQueueSize})`,
  );
  const seen = new Countdown(o.jobs);
  const wal = await walPosition(o.url);
  // graphile-worker has no way to start a runner that does not fetch at once, so its clock (like every
  // other's) starts at the first handler call, not here.
  const started = cpuMark();
  const runner = await run({
    connectionString: o.url,
    schema: o.schema,
    concurrency: o.concurrency,
    maxPoolSize: settings.maxPoolSize,
    noHandleSignals: true,
    logger,
    taskList: {
      noop: () => {
        seen.hit();
        o.progress.update(`${seen.count}/${o.jobs}`);
        return Promise.resolve();
      },
    },
    preset: { worker: { localQueue: { size: o.localQueueSize }, completeJobBatchDelay: 0 } },
  });
  const stop = o.cleanup.add('stop graphile-worker', () => runner.stop());
  await within(seen.done, o.timeoutMs, `${label} drain`);
  // A completed job is deleted: the drain ends when the jobs table is empty.
  const remaining = `SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(o.schema)}._private_jobs`;
  await pollUntil(() => admin.query<{ n: number }>(remaining).then((r) => r.rows[0]!.n === 0), {
    timeoutMs: 30_000,
    intervalMs: 5,
    what: `${label} completions`,
  });
  const ended = performance.now();
  const walBytes = await walBytesSince(o.url, wal);
  o.progress.done();
  await closeAdmin();
  await stop();
  await release();
  await drop();
  if (seen.count !== o.jobs) throw new Error(`${label} ran ${seen.count} jobs, expected ${o.jobs}`);
  return drainResult(o.jobs, { started, first: seen.first, ended, enqueueMs, walBytes }, settings);
}

function peerVersion(name: string): string {
  const path = new URL(`../../node_modules/${name}/package.json`, import.meta.url);
  return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
}
