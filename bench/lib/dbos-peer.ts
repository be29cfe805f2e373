import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { DLogger } from '@dbos-inc/dbos-sdk';
import pg from 'pg';
import { Cleanup } from './cleanup.js';
import { withClient } from './pg.js';
import { median, timedRounds } from './stats.js';

export interface DbosWorkflowResult {
  /** Milliseconds per execution, from start until its result is available, started alone one at a time. */
  single: number[];
  /** Executions per second, from the first start to the last result: the median of the rounds. */
  throughput: number;
  /** Executions per second of each throughput round, in order. */
  rounds: number[];
  executions: number;
  inFlight: number;
  settings: Record<string, unknown>;
}

export interface DbosWorkflowOptions {
  /** A PostgreSQL URL; the system database is created next to the database it names. */
  url: string;
  single: number;
  executions: number;
  inFlight: number;
  warmup: number;
  /** Executions run with `inFlight` in flight, unmeasured, before the throughput run (default 0). */
  throughputWarmup?: number;
  /** Throughput rounds of `executions` each; the median is reported (default 1). */
  throughputRounds?: number;
  onProgress?: (msg: string) => void;
  /** The system database pool's size; DBOS's default (10) when left out. */
  poolSize?: number;
  /** Given, the system database is also dropped when the run is aborted (Ctrl-C, deadline). */
  cleanup?: Cleanup;
}

/**
 * DBOS's documented default, and the fastest here: with 50 workflows in flight, pools of 20 and 50 ran up to
 * 15% and about 30% fewer workflows per second (2-core machine, where more connections only add contention).
 */
const POOL_SIZE = 10;

interface Io {
  n: number;
}

/**
 * DBOS Transact 5 as a workflow peer (SPEC §13): three no-op steps, each a registered step checkpointed in
 * the system database. Its settings are its documented ones for a self-hosted PostgreSQL: a pool of its
 * default size, tracing and OTLP off (their defaults), its warnings and errors routed to stderr so they
 * cannot mix with the metric lines on stdout. Durability is untouched: every checkpoint commits with the
 * server's `synchronous_commit`.
 */
export async function runDbosWorkflows(o: DbosWorkflowOptions): Promise<DbosWorkflowResult> {
  if (o.inFlight < 1) throw new Error(`inFlight must be at least 1, got ${o.inFlight}`);
  const progress = o.onProgress ?? (() => undefined);
  // Loaded on demand: the SDK takes a few hundred milliseconds to import, which other benchmarks need not
  // pay.
  const { DBOS } = await import('@dbos-inc/dbos-sdk');
  const database = `cosmos_bench_dbos_${process.pid}_${randomBytes(4).toString('hex')}`;
  const adminUrl = withDatabase(o.url, 'postgres');
  const systemDatabaseUrl = new URL(withDatabase(o.url, database));
  // DBOS's own idle-in-transaction cap (60 s), set at connection start-up: DBOS otherwise sends it as a SET
  // queued behind each new connection's first query, which pg deprecates with a warning.
  systemDatabaseUrl.searchParams.set('options', '-c idle_in_transaction_session_timeout=60000');
  const cleanup = o.cleanup ?? new Cleanup();
  const poolSize = o.poolSize ?? POOL_SIZE;

  // A database of its own rather than a schema: DBOS's NOTIFY channel names are fixed, so only a database
  // (NOTIFY's scope) keeps another DBOS on the same server from waking this one.
  await withClient(adminUrl, (c) => c.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`));
  const dropDatabase = cleanup.add(`drop database ${database}`, () =>
    withClient(adminUrl, async (c) => {
      // FORCE: a run that failed mid-flight may still hold connections; the database must go regardless.
      await c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`);
    }),
  );
  // Also when launch never happened: deregistering lets a later run in this process register the same names
  // again. The short drain lets the workflows of a failed run settle before their pool closes under them.
  const shutdown = cleanup.add('shut down DBOS', () =>
    DBOS.shutdown({ deregister: true, workflowCompletionTimeoutMS: 5_000 }),
  );

  try {
    // Three registrations, not one step called thrice: an application's steps are different functions.
    const step1 = DBOS.registerStep((i: Io) => Promise.resolve(i), { name: 'step1' });
    const step2 = DBOS.registerStep((i: Io) => Promise.resolve(i), { name: 'step2' });
    const step3 = DBOS.registerStep((i: Io) => Promise.resolve(i), { name: 'step3' });
    const threeSteps = DBOS.registerWorkflow(
      async (i: Io): Promise<Io> => {
        const a = await step1(i);
        const b = await step2(a);
        return step3(b);
      },
      { name: 'threeSteps' },
    );
    const run = async (n: number): Promise<void> => {
      const handle = await DBOS.startWorkflow(threeSteps)({ n });
      const out = await handle.getResult();
      if (out.n !== n) throw new Error(`DBOS workflow ${handle.workflowID} returned ${out.n}, expected ${n}`);
    };

    DBOS.setConfig({
      name: 'cosmos-bench',
      systemDatabaseUrl: systemDatabaseUrl.toString(),
      systemDatabasePoolSize: poolSize,
      logger: stderrLogger,
    });
    progress(`dbos: launch (system database ${database})`);
    await DBOS.launch();

    progress(`dbos: ${o.warmup} warm-up + ${o.single} single executions`);
    let next = 0;
    for (let i = 0; i < o.warmup; i++) await run(next++);
    const single: number[] = [];
    for (let i = 0; i < o.single; i++) {
      const t0 = performance.now();
      await run(next++);
      single.push(performance.now() - t0);
    }

    // One loop per slot: a slot starts its next execution as soon as its last one finished.
    const lanes = async (count: number): Promise<void> => {
      const end = next + count;
      const slot = async (): Promise<void> => {
        while (next < end) await run(next++);
      };
      await Promise.all(Array.from({ length: Math.min(o.inFlight, count) }, slot));
    };
    if (o.throughputWarmup) {
      progress(`dbos: ${o.throughputWarmup} warm-up executions, ${o.inFlight} in flight`);
      await lanes(o.throughputWarmup);
    }
    const count = o.throughputRounds ?? 1;
    const rounds = await timedRounds(count, o.executions, lanes, (r, rate) => {
      if (rate === undefined)
        progress(`dbos: ${o.executions} executions, ${o.inFlight} in flight (round ${r + 1}/${count})`);
    });
    const throughput = median(rounds);
    progress(`dbos: ${throughput} executions/s (median of ${rounds.join(', ')})`);

    return {
      single,
      throughput,
      rounds,
      executions: o.executions,
      inFlight: o.inFlight,
      settings: {
        version: sdkVersion(),
        systemDatabase: 'a database of its own per run, schema dbos',
        systemDatabasePoolSize: poolSize,
        systemDatabasePollingConcurrency: 'default (half the pool)',
        useListenNotify: true,
        idleInTransactionSessionTimeoutMs: 60_000,
        tracing: false,
        logs: 'warn and error to stderr',
        steps: 3,
        stepRetries: false,
        start: 'DBOS.startWorkflow, then handle.getResult()',
      },
    };
  } finally {
    try {
      await shutdown();
    } finally {
      await dropDatabase();
    }
  }
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** DBOS logs to stdout by default, where the benchmark's metric lines go; only its warnings matter here. */
const stderrLogger: DLogger = {
  info: () => undefined,
  debug: () => undefined,
  warn: (entry) => process.stderr.write(`[dbos] warn: ${describe(entry)}\n`),
  error: (entry) => process.stderr.write(`[dbos] error: ${describe(entry)}\n`),
};

function describe(entry: unknown): string {
  if (entry instanceof Error) return entry.stack ?? entry.message;
  return typeof entry === 'string' ? entry : JSON.stringify(entry);
}

function sdkVersion(): string {
  const path = new URL('../../node_modules/@dbos-inc/dbos-sdk/package.json', import.meta.url);
  return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
}
