import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/store.js';
import type { Execution } from '../../src/workflow/execution.js';
import { WIDTH, type FanoutState } from '../fixtures/workflows/fanout.js';
import type { StoreKind, TestPlace } from '../support/stores.js';

const NODE = fileURLToPath(new URL('./workflow-node.ts', import.meta.url));
const RUNS = 50;
const EXECUTIONS = 200;
/** The kill lands uniformly in this window after all executions are acknowledged (they take ~0.3-1 s). */
const KILL_WINDOW_MS = 400;

interface Node {
  child: ChildProcess;
  exited: Promise<NodeJS.Signals | null>;
}

/** Engine processes not yet seen to exit: a failing run must not leave one behind. */
const alive = new Set<ChildProcess>();

/** Starts an engine process; resolves once it printed `ready` (all executions acknowledged, or resumed). */
function startNode(
  place: TestPlace,
  dir: string,
  mode: 'start' | 'resume',
  run: number,
  log: string,
): Promise<Node> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', NODE, JSON.stringify(place.options), dir, mode, `r${run}`, String(EXECUTIONS), log],
    // Its runtime has 8 slots: libuv's thread pool is sized to match (the runtime warns otherwise).
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, UV_THREADPOOL_SIZE: '8' } },
  );
  alive.add(child);
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.on('exit', (_c, signal) => {
      alive.delete(child);
      resolve(signal);
    }),
  );
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    void exited.then(() => reject(new Error(`engine process (${mode}) exited before it was ready`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line === 'started' || line === 'resumed') resolve({ child, exited });
    });
  });
}

async function allFinished(
  store: Store,
  ids: string[],
  timeoutMs: number,
): Promise<Execution<FanoutState>[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await store.workflow.getExecutions(ids);
    const docs = rows.map((r) => JSON.parse(r.doc) as Execution<FanoutState>);
    if (docs.length === ids.length && docs.every((x) => x.status !== 'running')) return docs;
    if (Date.now() > deadline) {
      const open = docs.filter((x) => x.status === 'running').map((x) => x.id);
      throw new Error(
        `${open.length} executions still running after ${timeoutMs} ms: ${open.slice(0, 5).join(', ')}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The durability suite on one store; each store has its own test file, so the two run side by side. */
export function durabilitySuite(kind: StoreKind): void {
  describe(`workflow durability on ${kind.name}`, () => {
    let place: TestPlace;
    let store: Store;
    let dir: string;

    beforeAll(async () => {
      place = kind.place();
      store = await place.open();
      dir = mkdtempSync(join(tmpdir(), 'cosmos-durability-'));
    });
    afterAll(async () => {
      const left = [...alive].map((c) => new Promise((r) => c.once('exit', r)));
      for (const c of alive) c.kill('SIGKILL');
      await Promise.all(left);
      // Only what beforeAll got to open.
      await store?.close();
      await place?.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    it(
      `${RUNS} runs: SIGKILL at a random moment with ${EXECUTIONS} fan-out executions in flight, then a restart; every execution finishes and every reaction runs exactly once per result`,
      async () => {
        let reran = 0;
        let midFlight = 0;
        for (let run = 0; run < RUNS; run++) {
          const log = join(dir, `run-${run}.log`);
          const ids = Array.from({ length: EXECUTIONS }, (_, i) => `r${run}-${i}`);
          const first = await startNode(place, dir, 'start', run, log);
          await new Promise((r) => setTimeout(r, Math.floor(Math.random() * KILL_WINDOW_MS)));
          first.child.kill('SIGKILL');
          expect(await first.exited).toBe('SIGKILL');
          const before = await store.workflow.getExecutions(ids);
          if (before.some((r) => r.status === 'running')) midFlight++;

          const second = await startNode(place, dir, 'resume', run, log);
          const done = await allFinished(store, ids, 60_000);
          second.child.kill('SIGTERM');
          await second.exited;

          for (const x of done) {
            expect(x.status, `${x.id}: ${JSON.stringify(x.error)}`).toBe('succeeded');
            // Every request's reaction ran exactly once, whatever happened to the function.
            const counts = x.state.counts;
            expect(Object.keys(counts).sort()).toEqual(
              [...Array.from({ length: WIDTH }, (_, k) => String(k)), 'sum'].sort(),
            );
            for (const [key, n] of Object.entries(counts)) expect(n, `${x.id} reaction ${key}`).toBe(1);
            expect(x.output).toEqual({ counts });
          }
          const runs = new Map<string, number>();
          for (const line of readFileSync(log, 'utf8').split('\n'))
            if (line) runs.set(line, (runs.get(line) ?? 0) + 1);
          // Every function ran at least once; some more than once (at least once, never lost).
          expect(runs.size).toBe(EXECUTIONS * (WIDTH + 1));
          reran += [...runs.values()].filter((n) => n > 1).length;
        }
        process.stdout.write(
          `durability ${kind.name}: ${RUNS} runs, ${RUNS * EXECUTIONS} executions, killed mid-flight in ${midFlight} runs; ${reran} of ${RUNS * EXECUTIONS * (WIDTH + 1)} functions ran more than once; 0 lost; 0 duplicated reactions\n`,
        );
        // The kill must have landed mid-flight in most runs, or the test proves little.
        expect(midFlight).toBeGreaterThan(RUNS / 2);
      },
      30 * 60_000,
    );
  });
}
