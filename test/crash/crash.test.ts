import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Queue } from '../../src/queue/queue.js';
import type { Store } from '../../src/store/store.js';
import { storeKinds, type TestPlace } from '../support/stores.js';

const HOLDER = fileURLToPath(new URL('./lease-holder.ts', import.meta.url));
const MESSAGES = 200;
const BATCH = 50;
const KILL_AFTER = 10;
const LEASE_MS = 1_500;

/** Starts the lease holder and resolves once it has leased its batch and committed KILL_AFTER completions. */
function startHolder(place: TestPlace): Promise<{
  child: ChildProcess;
  leased: number[];
  completed: number[];
  exited: Promise<NodeJS.Signals | null>;
}> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', HOLDER, JSON.stringify(place.options), 'crash', String(BATCH)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.on('exit', (_code, signal) => resolve(signal)),
  );
  return new Promise((resolve, reject) => {
    let leased: number[] = [];
    const completed: number[] = [];
    child.on('error', reject);
    void exited.then(() => reject(new Error('lease holder exited before it was killed')));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const [word, rest] = line.split(' ', 2) as [string, string];
      if (word === 'leased') leased = JSON.parse(rest) as number[];
      if (word === 'completed') completed.push(Number(rest));
      if (completed.length === KILL_AFTER) {
        // Mid-batch: it holds BATCH - KILL_AFTER leases and is committing the next completion right now.
        child.kill('SIGKILL');
        resolve({ child, leased, completed: [...completed], exited });
      }
    });
  });
}

describe.each(storeKinds)('crash safety on $name', (kind) => {
  let place: TestPlace | undefined;
  let store: Store | undefined;

  afterEach(async () => {
    await store?.close();
    await place?.cleanup();
  });

  it('after SIGKILL of a lease holder every message is delivered again and completed exactly once', async () => {
    place = kind.place();
    store = await place.open();
    const queue = new Queue(store, { pollIntervalMs: 100, maintenanceIntervalMs: 100 });
    await queue.configure('crash', { leaseMs: LEASE_MS, maxAttempts: 5 });
    const ids = (
      await queue.enqueueMany(
        Array.from({ length: MESSAGES }, (_, i) => ({ queue: 'crash', payload: i, priority: i })),
      )
    ).map((r) => r.id);

    const holder = await startHolder(place);
    expect(await holder.exited).toBe('SIGKILL');
    expect(holder.leased).toHaveLength(BATCH);

    // The survivor: a consumer that logs every message it handles, with the attempt it arrived on.
    const handled = new Map<number, number[]>();
    queue.startMaintenance();
    const consumer = queue.work<number>(
      'crash',
      (m) => {
        handled.set(m.id, [...(handled.get(m.id) ?? []), m.attempts]);
      },
      { batchSize: 20 },
    );
    const deadline = Date.now() + 30_000;
    while ((await queue.counts('crash')).completed < MESSAGES && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    await consumer.stop();
    await queue.close();

    const counts = await queue.counts('crash');
    expect(counts).toMatchObject({ completed: MESSAGES, pending: 0, running: 0, errored: 0 });
    // Nothing committed by the holder was lost or redone.
    for (const id of holder.completed) expect(handled.has(id)).toBe(false);
    // Every handled message was handled exactly once by the survivor.
    for (const [, attempts] of handled) expect(attempts).toHaveLength(1);
    // What the holder leased but had not completed came back after its lease expired, on attempt 2.
    const committedByHolder = ids.filter((id) => !handled.has(id));
    const unfinished = holder.leased.filter((id) => !committedByHolder.includes(id));
    expect(unfinished.length).toBeGreaterThan(0);
    for (const id of unfinished) expect(handled.get(id)).toEqual([2]);
    // Everything the holder never touched arrived on its first attempt.
    for (const id of ids.filter((i) => !holder.leased.includes(i))) expect(handled.get(id)).toEqual([1]);
    // The holder's own commits are exactly the leased messages the survivor never saw.
    expect(committedByHolder.every((id) => holder.leased.includes(id))).toBe(true);
    expect(committedByHolder.length).toBeGreaterThanOrEqual(KILL_AFTER);
  }, 60_000);
});
