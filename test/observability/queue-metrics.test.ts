import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NodeMetrics } from '../../src/observability/metrics.js';
import { Queue } from '../../src/queue/queue.js';
import type { Store } from '../../src/store/store.js';
import { storeKinds, type TestPlace } from '../support/stores.js';

describe.each(storeKinds)('queue depth and age by priority class on $name', (kind) => {
  let place: TestPlace;
  let store: Store;
  let queue: Queue;

  beforeEach(async () => {
    place = kind.place();
    store = await place.open();
    queue = new Queue(store);
  });
  afterEach(async () => {
    await queue.close();
    await store.close();
    await place.cleanup();
  });

  it('counts ready messages per class and reports how long the oldest has waited', async () => {
    await queue.configure('work', {});
    const now = Date.now();
    // Two an hour ahead of their enqueue time, one at the default, one delayed (not ready: not counted).
    await queue.enqueue('work', { n: 1 }, { priority: now - 2 * 3_600_000 });
    await queue.enqueue('work', { n: 2 }, { priority: now - 2 * 3_600_000 });
    await queue.enqueue('work', { n: 3 });
    await queue.enqueue('work', { n: 4 }, { delayMs: 60_000 });
    const classes = await queue.pendingByClass('work');
    expect(classes.map((c) => [c.class, c.n]).sort()).toEqual([
      ['ahead_1h', 2],
      ['default', 1],
    ]);
    await new Promise((r) => setTimeout(r, 30));

    const { body } = await new NodeMetrics(queue).text();
    const value = (re: string): number => Number(new RegExp(`^${re} (\\S+)$`, 'm').exec(body)?.[1] ?? NaN);
    expect(value('cosmos_queue_depth\\{queue="work",pool="",class="ahead_1h"\\}')).toBe(2);
    expect(value('cosmos_queue_depth\\{queue="work",pool="",class="default"\\}')).toBe(1);
    const age = value('cosmos_queue_oldest_age_seconds\\{queue="work",pool="",class="ahead_1h"\\}');
    expect(age).toBeGreaterThan(0.02);
    expect(age).toBeLessThan(60);
  });
});
