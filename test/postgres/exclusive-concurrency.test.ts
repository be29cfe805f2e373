import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from '../../src/queue/queue.js';
import type { Store } from '../../src/store/store.js';
import { pgUrl, postgresKind, type TestPlace } from '../support/stores.js';

const CONSUMERS = 8;
const MESSAGES = 10_000;
const KEYS = 50;

/** Deterministic Fisher–Yates with a small LCG, so a failure reproduces. */
function shuffled<T>(items: T[]): T[] {
  let seed = 42;
  const random = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

interface LogEntry {
  consumer: number;
  id: number;
  key: string;
  event: 'leased' | 'completed';
}

/**
 * Exclusivity and single delivery under real concurrency: eight consumers, each with its own pool and so its
 * own connections, race for 10,000 messages spread over 50 exclusivity values. The test keeps a log of
 * every lease and completion and checks it afterwards.
 */
describe.runIf(pgUrl)('exclusive queue under concurrency on postgres', () => {
  let place: TestPlace;
  const stores: Store[] = [];

  beforeAll(() => {
    place = postgresKind.place();
  });

  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await place.cleanup();
  });

  it('never leases two messages of one value at once and completes every message exactly once', async () => {
    const setup = await place.open({ poolSize: 2 });
    stores.push(setup);
    const producer = new Queue(setup);
    await producer.configure('ex', { exclusive: true, leaseMs: 60_000 });
    // Exactly 200 messages per value, in shuffled order, so that messages of a held value sit at the head of
    // the queue where a faulty dequeue would hand them out.
    const keys = shuffled(Array.from({ length: MESSAGES }, (_, i) => `k${i % KEYS}`));
    for (let start = 0; start < MESSAGES; start += 2_000) {
      await producer.enqueueMany(
        keys.slice(start, start + 2_000).map((exclusivityKey, i) => ({
          queue: 'ex',
          payload: start + i,
          exclusivityKey,
        })),
      );
    }

    const log: LogEntry[] = [];
    const holders = new Map<string, number>();
    const violations: string[] = [];
    const completedBy = new Map<number, number>();
    let done = 0;

    const consumers = await Promise.all(
      Array.from({ length: CONSUMERS }, async () => {
        const store = await place.open({ poolSize: 2 });
        stores.push(store);
        return new Queue(store, { pollIntervalMs: 50 });
      }),
    );

    // Each consumer loops on explicit dequeue/complete so the log sees the exact order of its calls.
    await Promise.all(
      consumers.map(async (queue, consumer) => {
        while (done < MESSAGES) {
          const batch = await queue.dequeue<number>({ queue: 'ex', max: 8 });
          if (batch.length === 0) {
            await queue.waitForWork('ex', { timeoutMs: 20 });
            continue;
          }
          for (const m of batch) {
            const key = m.exclusivityKey!;
            const holder = holders.get(key);
            if (holder !== undefined)
              violations.push(`k=${key} leased by ${consumer} while held by ${holder}`);
            holders.set(key, consumer);
            log.push({ consumer, id: m.id, key, event: 'leased' });
          }
          // Hold the leases for a while, as real work would, so that a lease wrongly granted on a held value
          // would land inside this window and be seen.
          await new Promise((r) => setTimeout(r, 1 + Math.random() * 3));
          // Released in the log before the completion commits: the store only frees the value after it.
          for (const m of batch) holders.delete(m.exclusivityKey!);
          const completed = await queue.completeMany(batch.map((m) => m.lease));
          for (const id of completed) {
            log.push({ consumer, id, key: '', event: 'completed' });
            completedBy.set(id, (completedBy.get(id) ?? 0) + 1);
            done++;
          }
        }
      }),
    );

    expect(violations).toEqual([]);
    const leases = log.filter((e) => e.event === 'leased');
    const completions = log.filter((e) => e.event === 'completed');
    expect(completions).toHaveLength(MESSAGES);
    expect(completedBy.size).toBe(MESSAGES);
    expect([...completedBy.values()].every((n) => n === 1)).toBe(true);
    // No redeliveries either: every message was leased exactly once.
    expect(new Set(leases.map((e) => e.id)).size).toBe(leases.length);
    expect(leases).toHaveLength(MESSAGES);
    // The work really was spread over the consumers.
    const perConsumer = new Set(completions.map((e) => e.consumer));
    expect(perConsumer.size).toBeGreaterThan(1);
    const counts = await producer.counts('ex');
    expect(counts).toMatchObject({ completed: MESSAGES, pending: 0, running: 0 });
    await Promise.all(consumers.map((q) => q.close()));
    await producer.close();
  }, 120_000);
});
