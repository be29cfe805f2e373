import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CosmosError } from '../../src/errors.js';
import { Queue } from '../../src/queue/queue.js';
import { loadMigrations } from '../../src/store/migrations.js';
import type { Store } from '../../src/store/store.js';
import { manualClock, storeKinds, type TestPlace } from '../support/stores.js';

/**
 * One suite, every store: each state transition and queue setting of SPEC §5, with a manual clock so that
 * leases, delays and retention expire without sleeping.
 */
describe.each(storeKinds)('queue conformance on $name', (kind) => {
  let place: TestPlace;
  let store: Store;
  let queue: Queue;
  let clock: ReturnType<typeof manualClock>;

  beforeEach(async () => {
    place = kind.place();
    store = await place.open();
    clock = manualClock();
    queue = new Queue(store, { defaults: { ...queueDefaults } }, clock.now);
  });

  afterEach(async () => {
    await queue.close();
    await store.close();
    await place.cleanup();
  });

  const queueDefaults = {
    leaseMs: 1_000,
    delayMs: 0,
    maxAttempts: 3,
    retentionMs: 60_000,
    enqueuePaused: false,
    dequeuePaused: false,
    exclusive: false,
  };

  async function codeOf(p: Promise<unknown>): Promise<string> {
    try {
      await p;
    } catch (e) {
      expect(e).toBeInstanceOf(CosmosError);
      return (e as CosmosError).code;
    }
    throw new Error('expected a rejection');
  }

  describe('enqueue and priority', () => {
    it('stores a pending message whose default priority is the enqueue time', async () => {
      const { id, created, state } = await queue.enqueue('q', { hello: 'world' });
      expect(created).toBe(true);
      expect(state).toBe('pending');
      const m = await queue.get<{ hello: string }>(id);
      expect(m).toMatchObject({
        queue: 'q',
        state: 'pending',
        priority: clock.now(),
        attempts: 0,
        maxAttempts: 3,
      });
      expect(m!.payload).toEqual({ hello: 'world' });
    });

    it('dequeues lower priority numbers first, then in enqueue order', async () => {
      await queue.enqueue('q', 'late', { priority: 50 });
      await queue.enqueue('q', 'first-a', { priority: 10 });
      await queue.enqueue('q', 'first-b', { priority: 10 });
      await queue.enqueue('q', 'urgent', { priority: -5 });
      const got = await queue.dequeue<string>({ queue: 'q', max: 10 });
      expect(got.map((m) => m.payload)).toEqual(['urgent', 'first-a', 'first-b', 'late']);
    });

    it('default priorities make older messages run first, and classes shift by large offsets', async () => {
      await queue.enqueue('q', 'old');
      clock.advance(10);
      await queue.enqueue('q', 'new');
      await queue.enqueue('q', 'background', { priority: clock.now() + 3_600_000 });
      await queue.enqueue('q', 'interactive', { priority: clock.now() - 3_600_000 });
      const got = await queue.dequeue<string>({ queue: 'q', max: 10 });
      expect(got.map((m) => m.payload)).toEqual(['interactive', 'old', 'new', 'background']);
    });

    it('batch dequeue returns at most max messages and leaves the rest pending', async () => {
      await queue.enqueueMany(
        Array.from({ length: 25 }, (_, i) => ({ queue: 'q', payload: i, priority: i })),
      );
      const a = await queue.dequeue<number>({ queue: 'q', max: 10 });
      const b = await queue.dequeue<number>({ queue: 'q', max: 10 });
      const c = await queue.dequeue<number>({ queue: 'q', max: 10 });
      expect(a.map((m) => m.payload)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(b).toHaveLength(10);
      expect(c).toHaveLength(5);
      expect(await queue.dequeue({ queue: 'q', max: 10 })).toEqual([]);
      expect((await queue.counts('q')).running).toBe(25);
    });

    it('auto-creates queues with the defaults and lists them', async () => {
      expect(await queue.getQueue('fresh')).toBeUndefined();
      await queue.enqueue('fresh', 1);
      expect(await queue.getQueue('fresh')).toMatchObject({ name: 'fresh', ...queueDefaults });
      expect((await queue.listQueues()).map((q) => q.name)).toContain('fresh');
    });

    it('rejects bad input with clear errors and stores nothing', async () => {
      expect(await codeOf(queue.enqueue('bad name!', 1))).toBe('invalid_argument');
      expect(await codeOf(queue.enqueue('q', undefined))).toBe('invalid_argument');
      expect(await codeOf(queue.enqueue('q', 1, { priority: 1.5 }))).toBe('invalid_argument');
      expect(await codeOf(queue.enqueue('q', 1, { maxAttempts: 0 }))).toBe('invalid_argument');
      expect(await codeOf(queue.dequeue({ queue: 'q', max: 0 }))).toBe('invalid_argument');
      expect(await queue.getQueue('q')).toBeUndefined();
    });
  });

  describe('payload limit', () => {
    it('refuses a payload over the limit with payload_too_large, naming size and limit', async () => {
      const small = new Queue(store, { maxPayloadBytes: 100 }, clock.now);
      const err = await small.enqueue('q', 'x'.repeat(200)).catch((e: unknown) => e as CosmosError);
      expect(err).toBeInstanceOf(CosmosError);
      expect((err as CosmosError).code).toBe('payload_too_large');
      expect((err as CosmosError).details).toMatchObject({ bytes: 202, limit: 100 });
      expect((err as CosmosError).message).toMatch(/blob/);
      await small.enqueue('q', 'x'.repeat(50));
      expect((await small.counts('q')).pending).toBe(1);
      await small.close();
    });

    it('counts bytes, not characters', async () => {
      const small = new Queue(store, { maxPayloadBytes: 10 }, clock.now);
      expect(await codeOf(small.enqueue('q', 'ééééé'))).toBe('payload_too_large');
      await small.close();
    });
  });

  describe('leases', () => {
    it('leases with a token, spends an attempt, and completes', async () => {
      const { id } = await queue.enqueue('q', 'a');
      const [m] = await queue.dequeue({ queue: 'q', max: 1 });
      expect(m).toMatchObject({ id, state: 'running', attempts: 1, leaseExpiresAt: clock.now() + 1_000 });
      expect(await queue.complete({ id, token: 'not-the-token' })).toBe(false);
      expect(await queue.complete(m!.lease)).toBe(true);
      expect(await queue.get(id)).toMatchObject({ state: 'completed', finishedAt: clock.now() });
      expect(await queue.complete(m!.lease)).toBe(false);
    });

    it('an expired lease returns the message to pending with the attempt spent', async () => {
      const { id } = await queue.enqueue('q', 'a');
      const [first] = await queue.dequeue({ queue: 'q', max: 1 });
      clock.advance(999);
      expect(await queue.dequeue({ queue: 'q', max: 1 })).toEqual([]);
      clock.advance(1);
      expect(await queue.maintain()).toMatchObject({ requeued: 1, errored: 0 });
      expect(await queue.get(id)).toMatchObject({ state: 'pending', attempts: 1 });
      const [second] = await queue.dequeue({ queue: 'q', max: 1 });
      expect(second).toMatchObject({ id, attempts: 2 });
      // The first holder's lease is gone: its token no longer completes the message.
      expect(await queue.complete(first!.lease)).toBe(false);
      expect(await queue.complete(second!.lease)).toBe(true);
    });

    it('dequeue itself redelivers an expired lease without waiting for maintenance', async () => {
      const { id } = await queue.enqueue('q', 'a');
      await queue.dequeue({ queue: 'q', max: 1 });
      clock.advance(1_000);
      const [again] = await queue.dequeue({ queue: 'q', max: 1 });
      expect(again).toMatchObject({ id, attempts: 2 });
      expect(again!.lastError).toMatch(/lease expired after attempt 1/);
    });

    it('maintenance errors a message whose last lease expired', async () => {
      const { id } = await queue.enqueue('q', 'a', { maxAttempts: 1 });
      await queue.dequeue({ queue: 'q', max: 1 });
      clock.advance(1_000);
      expect(await queue.maintain()).toMatchObject({ requeued: 0, errored: 1 });
      expect((await queue.get(id))!.state).toBe('errored');
    });

    it('a message whose leases all expire becomes errored', async () => {
      const { id } = await queue.enqueue('q', 'a', { maxAttempts: 2 });
      for (let i = 0; i < 2; i++) {
        expect(await queue.dequeue({ queue: 'q', max: 1 })).toHaveLength(1);
        clock.advance(1_000);
      }
      // Whichever runs first (this dequeue or maintenance) settles it; either way it is errored, not leased.
      expect(await queue.dequeue({ queue: 'q', max: 1 })).toEqual([]);
      await queue.maintain();
      expect(await queue.get(id)).toMatchObject({ state: 'errored', attempts: 2 });
      expect((await queue.get(id))!.lastError).toMatch(/lease expired/);
    });

    it('extending a lease keeps it past its first expiry; a lost lease cannot be extended', async () => {
      const { id } = await queue.enqueue('q', 'a');
      const [m] = await queue.dequeue({ queue: 'q', max: 1 });
      clock.advance(900);
      expect(await queue.extend([m!.lease], 1_000)).toEqual([id]);
      clock.advance(900);
      await queue.maintain();
      expect(await queue.get(id)).toMatchObject({ state: 'running', leaseExpiresAt: clock.now() + 100 });
      clock.advance(100);
      await queue.maintain();
      expect(await queue.extend([m!.lease], 1_000)).toEqual([]);
    });

    it('a per-dequeue lease overrides the queue lease', async () => {
      await queue.enqueue('q', 'a');
      const [m] = await queue.dequeue({ queue: 'q', max: 1, leaseMs: 5_000 });
      expect(m!.leaseExpiresAt).toBe(clock.now() + 5_000);
    });

    it('release gives the message back without spending the attempt', async () => {
      const { id } = await queue.enqueue('q', 'a');
      const [m] = await queue.dequeue({ queue: 'q', max: 1 });
      expect(await queue.release([m!.lease])).toEqual([id]);
      expect(await queue.get(id)).toMatchObject({ state: 'pending', attempts: 0 });
      const [again] = await queue.dequeue({ queue: 'q', max: 1 });
      expect(again!.attempts).toBe(1);
      expect(await queue.release([again!.lease], { delayMs: 500 })).toEqual([id]);
      expect(await queue.get(id)).toMatchObject({ state: 'invisible', visibleAt: clock.now() + 500 });
    });
  });

  describe('failures and attempts', () => {
    it('fail requeues while attempts remain, then errors with the last error kept', async () => {
      const { id } = await queue.enqueue('q', 'a', { maxAttempts: 2 });
      const [m1] = await queue.dequeue({ queue: 'q', max: 1 });
      expect(await queue.fail(m1!.lease, new Error('boom 1'))).toBe('pending');
      const [m2] = await queue.dequeue({ queue: 'q', max: 1 });
      expect(m2!.attempts).toBe(2);
      expect(await queue.fail(m2!.lease, new Error('boom 2'))).toBe('errored');
      expect(await queue.get(id)).toMatchObject({ state: 'errored', lastError: 'Error: boom 2' });
      expect(await queue.fail(m2!.lease, 'again')).toBeUndefined();
    });

    it('a message keeps the time of its latest lease through fail, release and expiry', async () => {
      const { id } = await queue.enqueue('q', 'a', { maxAttempts: 5 });
      const leasedAt = clock.now();
      const [m1] = await queue.dequeue({ queue: 'q', max: 1 });
      clock.advance(10);
      await queue.fail(m1!.lease, new Error('x'), { retryDelayMs: 100 });
      expect(await queue.get(id)).toMatchObject({
        state: 'invisible',
        leasedAt,
        visibleAt: clock.now() + 100,
      });
      clock.advance(100);
      const [m2] = await queue.dequeue({ queue: 'q', max: 1 });
      expect(m2!.leasedAt).toBe(clock.now());
      await queue.release([m2!.lease]);
      expect(await queue.get(id)).toMatchObject({ state: 'pending', leasedAt: clock.now() });
      const second = clock.now();
      await queue.dequeue({ queue: 'q', max: 1 });
      clock.advance(1_000);
      await queue.maintain();
      expect(await queue.get(id)).toMatchObject({ state: 'pending', leasedAt: second });
    });

    it('a final failure errors the message at once, with attempts left', async () => {
      const { id } = await queue.enqueue('q', 'a', { maxAttempts: 5 });
      const [m] = await queue.dequeue({ queue: 'q', max: 1 });
      expect(await queue.fail(m!.lease, new Error('never'), { final: true, retryDelayMs: 1_000 })).toBe(
        'errored',
      );
      expect(await queue.get(id)).toMatchObject({ state: 'errored', attempts: 1, lastError: 'Error: never' });
      expect(await queue.dequeue({ queue: 'q', max: 1 })).toEqual([]);
    });

    it('fail with a retry delay makes the message invisible until then', async () => {
      const { id } = await queue.enqueue('q', 'a');
      const [m] = await queue.dequeue({ queue: 'q', max: 1 });
      expect(await queue.fail(m!.lease, 'later', { retryDelayMs: 300 })).toBe('invisible');
      expect(await queue.dequeue({ queue: 'q', max: 1 })).toEqual([]);
      clock.advance(300);
      expect((await queue.dequeue({ queue: 'q', max: 1 }))[0]).toMatchObject({ id, attempts: 2 });
    });

    it('the queue maxAttempts applies to messages that do not set their own', async () => {
      await queue.configure('q', { maxAttempts: 1 });
      const { id } = await queue.enqueue('q', 'a');
      const [m] = await queue.dequeue({ queue: 'q', max: 1 });
      expect(await queue.fail(m!.lease, 'x')).toBe('errored');
      expect((await queue.get(id))!.maxAttempts).toBe(1);
    });
  });

  describe('delays (invisible messages)', () => {
    it('a delayed message is invisible until its time, then dequeued', async () => {
      const { id, state } = await queue.enqueue('q', 'later', { delayMs: 500 });
      expect(state).toBe('invisible');
      expect(await queue.dequeue({ queue: 'q', max: 1 })).toEqual([]);
      clock.advance(499);
      expect(await queue.dequeue({ queue: 'q', max: 1 })).toEqual([]);
      clock.advance(1);
      expect((await queue.dequeue({ queue: 'q', max: 1 }))[0]?.id).toBe(id);
    });

    it('maintenance promotes due messages to pending', async () => {
      const { id } = await queue.enqueue('q', 'later', { delayMs: 500 });
      clock.advance(500);
      expect((await queue.maintain()).promoted).toBe(1);
      expect((await queue.get(id))!.state).toBe('pending');
    });

    it('the queue delay applies unless the message sets its own', async () => {
      await queue.configure('q', { delayMs: 200 });
      const a = await queue.enqueue('q', 'queue-delay');
      const b = await queue.enqueue('q', 'no-delay', { delayMs: 0 });
      expect(a.state).toBe('invisible');
      expect(b.state).toBe('pending');
      expect(await queue.nextDueAt('q')).toBe(clock.now() + 200);
    });
  });

  describe('cancel', () => {
    it('cancels invisible, pending and running messages, not finished ones', async () => {
      const inv = await queue.enqueue('q', 'i', { delayMs: 100 });
      const pen = await queue.enqueue('q', 'p');
      const run = await queue.enqueue('q', 'r', { priority: 0 });
      const [leased] = await queue.dequeue({ queue: 'q', max: 1 });
      expect(leased!.id).toBe(run.id);
      const done = await queue.enqueue('q', 'd', { priority: 1 });
      const [d] = await queue.dequeue({ queue: 'q', max: 1 });
      await queue.complete(d!.lease);
      const canceled = await queue.cancel([inv.id, pen.id, run.id, done.id]);
      expect(canceled.sort()).toEqual([inv.id, pen.id, run.id].sort());
      expect((await queue.get(done.id))!.state).toBe('completed');
      expect(await queue.complete(leased!.lease)).toBe(false);
      expect((await queue.counts('q')).canceled).toBe(3);
    });
  });

  describe('metadata filters', () => {
    it('dequeues only messages whose metadata holds every filter pair', async () => {
      await queue.enqueue('q', 'a', { metadata: { tenant: 'a', size: 'large' }, priority: 1 });
      await queue.enqueue('q', 'b', { metadata: { tenant: 'b', size: 'large' }, priority: 2 });
      await queue.enqueue('q', 'c', { metadata: { tenant: 'a', size: 'small' }, priority: 3 });
      await queue.enqueue('q', 'd', { priority: 4 });
      const large = await queue.dequeue<string>({
        queue: 'q',
        max: 10,
        filter: { size: 'large', tenant: 'a' },
      });
      expect(large.map((m) => m.payload)).toEqual(['a']);
      const tenantA = await queue.dequeue<string>({ queue: 'q', max: 10, filter: { tenant: 'a' } });
      expect(tenantA.map((m) => m.payload)).toEqual(['c']);
      expect(tenantA[0]!.metadata).toEqual({ tenant: 'a', size: 'small' });
      const rest = await queue.dequeue<string>({ queue: 'q', max: 10 });
      expect(rest.map((m) => m.payload)).toEqual(['b', 'd']);
    });

    it('allows four pairs and refuses a fifth or a bad key', async () => {
      const four = { a: '1', b: '2', c: '3', d: '4' };
      await queue.enqueue('q', 'x', { metadata: four });
      expect(await codeOf(queue.enqueue('q', 'x', { metadata: { ...four, e: '5' } }))).toBe(
        'invalid_argument',
      );
      expect(await codeOf(queue.enqueue('q', 'x', { metadata: { 'bad key': '1' } }))).toBe(
        'invalid_argument',
      );
      expect(await codeOf(queue.dequeue({ queue: 'q', max: 1, filter: { ...four, e: '5' } }))).toBe(
        'invalid_argument',
      );
      expect((await queue.dequeue({ queue: 'q', max: 1, filter: four }))[0]?.payload).toBe('x');
    });
  });

  describe('idempotent enqueue', () => {
    it('a repeated key returns the first message', async () => {
      const a = await queue.enqueue('q', 'first', { idempotencyKey: 'k1' });
      const b = await queue.enqueue('q', 'second', { idempotencyKey: 'k1' });
      expect(b).toEqual({ ...a, created: false });
      expect((await queue.get(a.id))!.payload).toBe('first');
      expect((await queue.counts('q')).pending).toBe(1);
    });

    it('keys are scoped per queue and hold after the message finished', async () => {
      const a = await queue.enqueue('q', 1, { idempotencyKey: 'k' });
      const other = await queue.enqueue('other', 1, { idempotencyKey: 'k' });
      expect(other.id).not.toBe(a.id);
      const [m] = await queue.dequeue({ queue: 'q', max: 1 });
      await queue.complete(m!.lease);
      expect(await queue.enqueue('q', 2, { idempotencyKey: 'k' })).toMatchObject({
        id: a.id,
        created: false,
        state: 'completed',
      });
    });

    it('within one batch, and mixed with new keys, results follow input order', async () => {
      const existing = await queue.enqueue('q', 0, { idempotencyKey: 'old' });
      const res = await queue.enqueueMany([
        { queue: 'q', payload: 1 },
        { queue: 'q', payload: 2, idempotencyKey: 'old' },
        { queue: 'q', payload: 3, idempotencyKey: 'new' },
        { queue: 'q', payload: 4, idempotencyKey: 'new' },
        { queue: 'q', payload: 5 },
      ]);
      expect(res.map((r) => r.created)).toEqual([true, false, true, false, true]);
      expect(res[1]!.id).toBe(existing.id);
      expect(res[3]!.id).toBe(res[2]!.id);
      const payloads = await Promise.all(res.map(async (r) => (await queue.get(r.id))!.payload));
      expect(payloads).toEqual([1, 0, 3, 3, 5]);
    });

    it('concurrent enqueues of one key create exactly one message', async () => {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => queue.enqueue('q', i, { idempotencyKey: 'race' })),
      );
      expect(new Set(results.map((r) => r.id)).size).toBe(1);
      expect(results.filter((r) => r.created)).toHaveLength(1);
    });
  });

  describe('pause flags', () => {
    it('enqueue paused: the whole batch is refused and nothing is stored; resuming accepts again', async () => {
      await queue.enqueue('open', 1);
      await queue.configure('closed', { enqueuePaused: true });
      const err = await queue
        .enqueueMany([
          { queue: 'open', payload: 2 },
          { queue: 'closed', payload: 3 },
        ])
        .catch((e: unknown) => e as CosmosError);
      expect((err as CosmosError).code).toBe('queue_enqueue_paused');
      expect((err as CosmosError).details).toEqual({ queues: ['closed'] });
      expect((await queue.counts('open')).pending).toBe(1);
      expect((await queue.counts('closed')).pending).toBe(0);
      await queue.configure('closed', { enqueuePaused: false });
      await queue.enqueue('closed', 3);
      expect((await queue.counts('closed')).pending).toBe(1);
    });

    it('dequeue paused: nothing is handed out and nothing is lost', async () => {
      await queue.enqueueMany([1, 2, 3].map((payload) => ({ queue: 'q', payload })));
      await queue.configure('q', { dequeuePaused: true });
      expect(await queue.dequeue({ queue: 'q', max: 10 })).toEqual([]);
      await queue.enqueue('q', 4);
      expect((await queue.counts('q')).pending).toBe(4);
      await queue.configure('q', { dequeuePaused: false });
      expect(await queue.dequeue({ queue: 'q', max: 10 })).toHaveLength(4);
    });

    it('refuses unknown or malformed settings', async () => {
      expect(await codeOf(queue.configure('q', { leaseMs: -1 }))).toBe('invalid_argument');
      expect(await codeOf(queue.configure('q', { colour: 'red' } as never))).toBe('invalid_argument');
      expect(await queue.configure('q', { leaseMs: 5 })).toMatchObject({ leaseMs: 5, maxAttempts: 3 });
    });
  });

  describe('exclusive queues', () => {
    it('leases at most one message per exclusivity value and returns the next eligible one instead', async () => {
      await queue.configure('ex', { exclusive: true });
      await queue.enqueueMany([
        { queue: 'ex', payload: 'a1', exclusivityKey: 'a', priority: 1 },
        { queue: 'ex', payload: 'a2', exclusivityKey: 'a', priority: 2 },
        { queue: 'ex', payload: 'b1', exclusivityKey: 'b', priority: 3 },
        { queue: 'ex', payload: 'free', priority: 4 },
        { queue: 'ex', payload: 'c1', exclusivityKey: 'c', priority: 5 },
      ]);
      const first = await queue.dequeue<string>({ queue: 'ex', max: 10 });
      expect(first.map((m) => m.payload)).toEqual(['a1', 'b1', 'free', 'c1']);
      expect(await queue.dequeue({ queue: 'ex', max: 10 })).toEqual([]);
      await queue.complete(first[0]!.lease);
      const next = await queue.dequeue<string>({ queue: 'ex', max: 10 });
      expect(next.map((m) => m.payload)).toEqual(['a2']);
    });

    it('frees the value on fail, release, cancel and lease expiry', async () => {
      await queue.configure('ex', { exclusive: true, maxAttempts: 10 });
      const { id } = await queue.enqueue('ex', 'x1', { exclusivityKey: 'k', priority: 1 });
      await queue.enqueue('ex', 'x2', { exclusivityKey: 'k', priority: 2 });
      const take = async (): Promise<string[]> =>
        (await queue.dequeue<string>({ queue: 'ex', max: 10 })).map((m) => m.payload);

      let [m] = await queue.dequeue({ queue: 'ex', max: 1 });
      expect(await take()).toEqual([]);
      await queue.fail(m!.lease, 'x');
      [m] = await queue.dequeue({ queue: 'ex', max: 1 });
      expect(m!.id).toBe(id);
      await queue.release([m!.lease]);
      // Leased and abandoned: the lease expires and maintenance must free the value.
      expect(await queue.dequeue({ queue: 'ex', max: 1 })).toHaveLength(1);
      clock.advance(1_000);
      await queue.maintain();
      [m] = await queue.dequeue({ queue: 'ex', max: 1 });
      expect(m!.id).toBe(id);
      await queue.cancel([id]);
      expect(await take()).toEqual(['x2']);
    });

    it('completing or canceling a message wakes consumers waiting for its value', async () => {
      const real = new Queue(store, { pollIntervalMs: 30_000 });
      await real.configure('ex', { exclusive: true });
      await real.enqueueMany(
        ['a1', 'a2', 'a3'].map((payload) => ({ queue: 'ex', payload, exclusivityKey: 'a' })),
      );
      const [first] = await real.dequeue({ queue: 'ex', max: 10 });
      let waiting = real.waitForWork('ex');
      await new Promise((r) => setTimeout(r, 20));
      await real.complete(first!.lease);
      expect(await waiting).toBe(true);
      const [second] = await real.dequeue({ queue: 'ex', max: 10 });
      expect(second!.payload).toBe('a2');
      waiting = real.waitForWork('ex');
      await new Promise((r) => setTimeout(r, 20));
      await real.cancel([second!.id]);
      expect(await waiting).toBe(true);
      expect((await real.dequeue<string>({ queue: 'ex', max: 10 }))[0]!.payload).toBe('a3');
      await real.close();
    });

    it('refuses exclusivity keys on a queue that is not exclusive', async () => {
      await queue.enqueue('plain', 1);
      expect(await codeOf(queue.enqueue('plain', 2, { exclusivityKey: 'k' }))).toBe('queue_not_exclusive');
      expect((await queue.counts('plain')).pending).toBe(1);
    });

    it('an auto-created queue whose first message is keyed is exclusive', async () => {
      await queue.enqueue('auto', 1, { exclusivityKey: 'k' });
      expect((await queue.getQueue('auto'))!.exclusive).toBe(true);
    });
  });

  describe('garbage collection', () => {
    it('deletes finished messages after the retention period and keeps everything else', async () => {
      await queue.configure('q', { retentionMs: 1_000 });
      const ids = await queue.enqueueMany(
        [0, 1, 2, 3].map((payload) => ({ queue: 'q', payload, priority: payload })),
      );
      const [a, b, c] = await queue.dequeue({ queue: 'q', max: 3, leaseMs: 60_000 });
      await queue.complete(a!.lease);
      await queue.fail(b!.lease, 'x');
      await queue.cancel([ids[3]!.id]);
      clock.advance(999);
      expect((await queue.maintain()).collected).toBe(0);
      clock.advance(1);
      expect((await queue.maintain()).collected).toBe(2);
      expect(await queue.get(a!.id)).toBeUndefined();
      expect(await queue.get(ids[3]!.id)).toBeUndefined();
      expect((await queue.get(b!.id))!.state).toBe('pending');
      expect((await queue.get(c!.id))!.state).toBe('running');
    });
  });

  describe('wake-ups and consumers', () => {
    it('an enqueue wakes a waiting consumer before its poll interval', async () => {
      const real = new Queue(store, { pollIntervalMs: 30_000 });
      const waiting = real.waitForWork('wake');
      await new Promise((r) => setTimeout(r, 20));
      await real.enqueue('wake', 1);
      expect(await waiting).toBe(true);
      await real.close();
    });

    it('a consumer runs every message once, retries failures, and stops cleanly', async () => {
      const real = new Queue(store, { defaults: { ...queueDefaults, maxAttempts: 3 } });
      const seen = new Map<number, number>();
      const consumer = real.work<number>(
        'jobs',
        (m) => {
          seen.set(m.payload, (seen.get(m.payload) ?? 0) + 1);
          if (m.payload % 10 === 0 && m.attempts === 1) throw new Error('first attempt fails');
        },
        { batchSize: 7 },
      );
      await real.enqueueMany(Array.from({ length: 50 }, (_, payload) => ({ queue: 'jobs', payload })));
      for (let i = 0; i < 500 && (await real.counts('jobs')).completed < 50; i++)
        await new Promise((r) => setTimeout(r, 10));
      await consumer.stop();
      expect((await real.counts('jobs')).completed).toBe(50);
      expect(seen.size).toBe(50);
      for (const [n, times] of seen) expect(times).toBe(n % 10 === 0 ? 2 : 1);
      expect(consumer.stats).toMatchObject({ completed: 50, failed: 5, leaseLost: 0 });
      await real.close();
    });
  });

  describe('schema', () => {
    it('reopening is a no-op and reports the schema version', async () => {
      const latest = loadMigrations(store.dialect).length;
      expect(await store.schemaVersion()).toBe(latest);
      const again = await place.open();
      expect(await again.schemaVersion()).toBe(latest);
      await again.close();
    });
  });
});
