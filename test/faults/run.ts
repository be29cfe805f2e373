/**
 * `npm run test:faults`: distributed mode under faults. A throwaway PostgreSQL cluster, 2 API/engine nodes and
 * 3 worker nodes as separate `cosmos` processes; 2,000 fan-out executions submitted through the API while
 * random nodes are killed with SIGKILL every few seconds and restarted, and PostgreSQL itself is restarted once
 * (an immediate stop: crash recovery). Then it waits for every execution and checks, from the store and from
 * the functions' own run log, that nothing was lost and no reaction ran twice. Bounded to 10 minutes; loopback
 * only; it ends every process it started.
 *
 * Last line: faults executions=<n> succeeded=<s> lost=<l> duplicated_reactions=<d> duplicate_function_runs=<f>
 *            kills=<k> pg_restarts=<r>
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { WIDTH, type FanoutState } from '../fixtures/workflows/fanout.js';
import type { Execution } from '../../src/workflow/execution.js';
import { freePort, startPgCluster, type PgCluster } from './pg-cluster.js';

const EXECUTIONS = Number(process.env['FAULTS_EXECUTIONS'] ?? 2_000);
const DEADLINE_MS = 10 * 60_000;
/** Kills land every KILL_EVERY_MS plus up to the same again, while the chaos lasts. */
const KILL_EVERY_MS = 1_500;
/** Submissions come in this many waves; PostgreSQL restarts shortly after the second starts. */
const WAVES = 4;
const CHAOS_MS = Number(process.env['FAULTS_CHAOS_MS'] ?? 60_000);
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const SERVICES = fileURLToPath(new URL('../fixtures/faults', import.meta.url));

const began = Date.now();
const say = (msg: string): void =>
  void process.stdout.write(`[${((Date.now() - began) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);

interface NodeProc {
  label: string;
  args: string[];
  url?: string;
  child?: ChildProcess;
  ready: Promise<void>;
  exits: number;
}

const work = mkdtempSync(join(tmpdir(), 'cosmos-faults-'));
const runLog = join(work, 'runs.log');
writeFileSync(runLog, '');
let cluster: PgCluster | undefined;
const nodes: NodeProc[] = [];
let stopping = false;
let unexpectedExits = 0;

function launch(n: NodeProc): void {
  const out = createWriteStream(join(work, `${n.label}.log`), { flags: 'a' });
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...n.args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, COSMOS_LOG_LEVEL: 'warn', UV_THREADPOOL_SIZE: '4' },
  });
  n.child = child;
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  n.ready = new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (/^cosmos (start|worker): (listening|running)/.test(line)) resolve();
    });
    child.once('exit', (code, signal) => {
      reject(new Error(`${n.label} exited (${code ?? signal}) before it was ready`));
    });
  });
  n.ready.catch(() => undefined);
  child.once('exit', (code, signal) => {
    if (n.child === child) n.child = undefined;
    if (!stopping && signal !== 'SIGKILL') {
      unexpectedExits++;
      say(`${n.label} exited by itself (${code ?? signal}); restarting it. Its last lines:`);
      const lines = readFileSync(join(work, `${n.label}.log`), 'utf8')
        .trim()
        .split('\n')
        .slice(-12);
      for (const l of lines) process.stdout.write(`    ${l.slice(0, 800)}\n`);
      setTimeout(() => !stopping && launch(n), 500);
    }
  });
}

async function kill(n: NodeProc): Promise<void> {
  const child = n.child;
  if (!child) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}

async function post(url: string, i: number): Promise<string> {
  const res = await fetch(`${url}/v1/services/faults/fanout`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': `faults-${i}` },
    body: JSON.stringify({ log: runLog }),
    signal: AbortSignal.timeout(10_000),
  });
  if (res.status !== 202 && res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { executionId: string }).executionId;
}

/** Submits every execution through the API nodes, moving to the other node (same idempotency key) on failure. */
async function submitAll(apis: NodeProc[], from: number, spreadMs: number): Promise<string[]> {
  const ids: string[] = new Array<string>(EXECUTIONS);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < EXECUTIONS; i = next++) {
      // In waves across the chaos window, each a backlog of hundreds, so kills and the restart land while
      // executions are in flight.
      const due = from + Math.floor((i * WAVES) / EXECUTIONS) * (spreadMs / WAVES);
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      for (let attempt = 0; ; attempt++) {
        const api = apis[(i + attempt) % apis.length]!;
        try {
          ids[i] = await post(api.url!, i);
          break;
        } catch {
          if (Date.now() - began > DEADLINE_MS) throw new Error(`submission ${i} never accepted`);
          await new Promise((r) => setTimeout(r, Math.min(2_000, 50 * 2 ** Math.min(attempt, 5))));
        }
      }
      if (++done % 250 === 0) say(`submitted ${done}/${EXECUTIONS}`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return ids;
}

/** Running executions now, for the progress lines ("?" while the database is away). */
async function inFlight(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
  try {
    await c.connect();
    const { rows } = await c.query<{ n: string }>(
      "SELECT count(*) AS n FROM cosmos.executions WHERE status = 'running'",
    );
    return rows[0]!.n;
  } catch {
    return '?';
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function main(): Promise<number> {
  cluster = await startPgCluster();
  say(`PostgreSQL up on 127.0.0.1:${cluster.port} (${cluster.dir})`);
  const config = join(work, 'cosmos.json');
  // Short leases and beats, so a killed node's work moves within seconds, as an operator would tune a fleet
  // that expects failures.
  writeFileSync(
    config,
    JSON.stringify({
      db: cluster.url,
      schema: 'cosmos',
      services: SERVICES,
      leaseMs: 3_000,
      pollMs: 500,
      heartbeatMs: 1_000,
      drainTimeoutMs: 5_000,
      maintenanceIntervalMs: 250,
    }),
  );
  for (let i = 0; i < 2; i++) {
    const port = await freePort();
    nodes.push({
      label: `api-${i + 1}`,
      args: ['start', '--config', config, '--port', String(port), '--name', `api-${i + 1}`],
      url: `http://127.0.0.1:${port}`,
      exits: 0,
      ready: Promise.resolve(),
    });
  }
  for (let i = 0; i < 3; i++)
    nodes.push({
      label: `worker-${i + 1}`,
      args: ['worker', '--config', config, '--slots', '4', '--name', `worker-${i + 1}`],
      exits: 0,
      ready: Promise.resolve(),
    });
  // The first node migrates the schema alone; the rest start together.
  launch(nodes[0]!);
  await nodes[0]!.ready;
  for (const n of nodes.slice(1)) launch(n);
  await Promise.all(nodes.map((n) => n.ready));
  say('2 API/engine nodes and 3 worker nodes are up');

  const apis = nodes.filter((n) => n.url);
  let kills = 0;
  let pgRestarts = 0;
  const chaosStart = Date.now();
  const chaosEnd = chaosStart + CHAOS_MS;
  const chaos = (async () => {
    while (!stopping && Date.now() < chaosEnd) {
      await new Promise((r) => setTimeout(r, KILL_EVERY_MS + Math.random() * KILL_EVERY_MS));
      if (stopping || Date.now() >= chaosEnd) break;
      if (pgRestarts === 0 && Date.now() > chaosStart + (CHAOS_MS * 0.8) / WAVES + 1_000) {
        say(
          `restarting PostgreSQL (immediate stop, crash recovery; ${await inFlight(cluster.url)} executions in flight)`,
        );
        cluster.restart('immediate');
        pgRestarts++;
        say('PostgreSQL is back');
        continue;
      }
      const up = nodes.filter((n) => n.child);
      const victim = up[Math.floor(Math.random() * up.length)];
      if (!victim) continue;
      await kill(victim);
      kills++;
      say(`SIGKILL ${victim.label} (${await inFlight(cluster.url)} executions in flight)`);
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 1_200));
      if (!stopping) launch(victim);
    }
  })();

  const ids = await submitAll(apis, chaosStart, CHAOS_MS * 0.8);
  say(
    `all ${EXECUTIONS} executions accepted; chaos goes on until ${Math.round(CHAOS_MS / 1000)} s after the start`,
  );
  await chaos;
  say(`chaos over (${kills} kills, ${pgRestarts} PostgreSQL restart); waiting for every execution`);
  for (const n of nodes.filter((x) => !x.child)) launch(n);
  await Promise.all(nodes.map((n) => n.ready));

  const db = new pg.Client({ connectionString: cluster.url });
  await db.connect();
  let docs: Execution<FanoutState>[];
  let lastReport = 0;
  for (;;) {
    const { rows } = await db.query<{ doc: string }>('SELECT doc FROM cosmos.executions WHERE id = ANY($1)', [
      ids,
    ]);
    docs = rows.map((r) => JSON.parse(r.doc) as Execution<FanoutState>);
    const open = docs.filter((x) => x.status === 'running').length + (ids.length - docs.length);
    if (open === 0 || Date.now() - began > DEADLINE_MS) break;
    if (Date.now() - lastReport > 5_000) {
      say(`${ids.length - open}/${ids.length} finished`);
      lastReport = Date.now();
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  const byId = new Map(docs.map((x) => [x.id, x]));
  const stuck = ids.filter((id) => byId.get(id)?.status !== 'succeeded' && byId.get(id)?.status !== 'failed');
  for (const id of stuck.slice(0, 5)) {
    const x = byId.get(id);
    say(
      `not finished: ${id} ${x ? `seq state ${JSON.stringify(x.state)} outstanding ${JSON.stringify(x.outstanding)}` : '(no row)'}`,
    );
    const { rows } = await db.query(
      `SELECT id, queue, state, attempts, max_attempts, last_error FROM cosmos.message_view
       WHERE exclusivity_key = $1 OR payload::text LIKE '%' || $1 || '%' ORDER BY id`,
      [id],
    );
    for (const r of rows) say(`  message ${JSON.stringify(r)}`);
  }
  await db.end();

  const succeeded = docs.filter((x) => x.status === 'succeeded').length;
  const lost = stuck.length;
  let duplicatedReactions = 0;
  let missingReactions = 0;
  for (const x of docs) {
    const counts = x.state.counts ?? {};
    for (const n of Object.values(counts)) if (n > 1) duplicatedReactions += n - 1;
    if (x.status === 'succeeded' && Object.keys(counts).length !== WIDTH + 1) missingReactions++;
  }
  const runs = new Map<string, number>();
  for (const line of readFileSync(runLog, 'utf8').split('\n'))
    if (line) runs.set(line, (runs.get(line) ?? 0) + 1);
  const duplicateRuns = [...runs.values()].filter((n) => n > 1).length;
  const failed = docs.filter((x) => x.status === 'failed');
  if (failed.length > 0)
    say(
      `failed executions: ${failed
        .slice(0, 3)
        .map((x) => `${x.id} ${JSON.stringify(x.error)}`)
        .join('; ')}`,
    );
  if (missingReactions > 0) say(`${missingReactions} succeeded executions lack a reaction`);
  if (unexpectedExits > 0) say(`${unexpectedExits} node exits that were not kills (logs in ${work})`);
  process.stdout.write(
    `faults executions=${ids.length} succeeded=${succeeded} lost=${lost} duplicated_reactions=${duplicatedReactions} duplicate_function_runs=${duplicateRuns} kills=${kills} pg_restarts=${pgRestarts}\n`,
  );
  const ok =
    succeeded === ids.length &&
    lost === 0 &&
    duplicatedReactions === 0 &&
    missingReactions === 0 &&
    pgRestarts === 1 &&
    kills > 0;
  // A node must ride out the database restart, not crash (a supervisor would hide that).
  return ok && unexpectedExits === 0 ? 0 : 1;
}

async function cleanup(keepLogs: boolean): Promise<void> {
  stopping = true;
  await Promise.all(nodes.map((n) => kill(n)));
  cluster?.stop();
  if (!keepLogs) rmSync(work, { recursive: true, force: true });
  else say(`node logs kept in ${work}`);
}

const timer = setTimeout(() => {
  say('faults: over the 10-minute bound; stopping');
  void cleanup(true).then(() => process.exit(1));
}, DEADLINE_MS + 30_000);
let code = 1;
try {
  code = await main();
} catch (e) {
  say(`faults: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  if (cluster) process.stdout.write(cluster.log());
}
clearTimeout(timer);
await cleanup(code !== 0);
process.exit(code);
