import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import * as basic from '../fixtures/functions/basic.js';
import {
  FunctionRuntime,
  type FunctionRuntimeOptions,
  type InvocationResult,
} from '../../src/functions/runtime.js';
import { Queue } from '../../src/queue/queue.js';
import { commandFn } from '../../src/functions/runtimes/command.js';
import { openBlobStore } from '../../src/store/blobs/open-blobs.js';
import type { Store } from '../../src/store/store.js';
import type { Message } from '../../src/types.js';
import { storeKinds, type TestPlace } from '../support/stores.js';

const MODULE = 'test/fixtures/functions/basic.ts';

describe.each(storeKinds)('function runtime on $name', (kind) => {
  let place: TestPlace;
  let store: Store;
  let queue: Queue;
  let dir: string;
  let runtime: FunctionRuntime | undefined;
  const results: InvocationResult[] = [];

  beforeEach(async () => {
    place = kind.place();
    store = await place.open();
    queue = new Queue(store);
    dir = mkdtempSync(join(tmpdir(), 'cosmos-rt-'));
    results.length = 0;
  });
  afterEach(async () => {
    await runtime?.stop();
    runtime = undefined;
    await queue.close();
    await store.close();
    await place.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  function make(options: FunctionRuntimeOptions = {}): FunctionRuntime {
    runtime = new FunctionRuntime(queue, { bundleDir: dir, capacity: 2, pollMs: 100, ...options });
    runtime.onResult((r) => results.push(r));
    return runtime;
  }

  async function until(check: () => boolean, ms = 20_000): Promise<void> {
    const end = Date.now() + ms;
    while (!check()) {
      if (Date.now() > end)
        throw new Error(
          `timed out; results so far: ${JSON.stringify(results.map((r) => [r.function, r.ok, r.attempt]))}`,
        );
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  it('retries follow the backoff and stop at the attempt limit; the message ends errored', async () => {
    const rt = make();
    const flaky = {
      ...basic.flaky,
      options: {
        ...basic.flaky.options,
        attempts: 3,
        backoff: { initialMs: 150, maxMs: 10_000, factor: 2, jitter: false },
      },
    };
    await rt.register('flaky', flaky, { module: MODULE });
    await rt.start();
    const { id } = await rt.invoke('flaky', { failUntil: 99 });
    // The message as each failed attempt left it: its lease time and when it becomes visible again.
    const after: Promise<Message | undefined>[] = [];
    rt.onResult((r) => r.messageId === id && after.push(queue.get(id)));
    await until(() => results.filter((r) => r.messageId === id).length === 3);
    const mine = results.filter((r) => r.messageId === id);
    expect(mine.map((r) => [r.attempt, r.ok, r.final])).toEqual([
      [1, false, false],
      [2, false, false],
      [3, false, true],
    ]);
    const [m1, m2, m3] = await Promise.all(after);
    // Attempt 2 waits the initial delay, attempt 3 the doubled one, each counted from its failure.
    expect(m1).toMatchObject({ state: 'invisible', attempts: 1 });
    expect(m1!.visibleAt - m1!.leasedAt!).toBeGreaterThanOrEqual(150);
    expect(m1!.visibleAt - m1!.leasedAt!).toBeLessThan(150 + 2_000);
    expect(m2).toMatchObject({ state: 'invisible', attempts: 2 });
    expect(m2!.leasedAt!).toBeGreaterThanOrEqual(m1!.visibleAt);
    expect(m2!.visibleAt - m2!.leasedAt!).toBeGreaterThanOrEqual(300);
    expect(m2!.visibleAt - m2!.leasedAt!).toBeLessThan(300 + 2_000);
    expect(m3!.leasedAt!).toBeGreaterThanOrEqual(m2!.visibleAt);
    expect(await queue.get(id)).toMatchObject({
      state: 'errored',
      attempts: 3,
    });
    expect((await queue.get(id))!.lastError).toMatch(/attempt 3 fails/);
    await new Promise((r) => setTimeout(r, 400));
    expect(results.filter((r) => r.messageId === id)).toHaveLength(3);
  });

  it('a non-retryable class ends at once; a CPU loop is killed at its timeout', async () => {
    const rt = make();
    await rt.register('refuse', basic.refuse, { module: MODULE });
    await rt.register(
      'spin',
      { ...basic.spin, options: { ...basic.spin.options, attempts: 1 } },
      { module: MODULE },
    );
    await rt.start();
    const a = await rt.invoke('refuse', {});
    const b = await rt.invoke('spin', {});
    await until(() => results.length === 2);
    expect(results.find((r) => r.messageId === a.id)).toMatchObject({ ok: false, final: true, attempt: 1 });
    expect(results.find((r) => r.messageId === b.id)!.error).toMatchObject({ code: 'function_timeout' });
    expect((await queue.get(a.id))!.state).toBe('errored');
    expect((await queue.get(b.id))!.state).toBe('errored');
  });

  it('replaces a worker killed by a heap blow-up, and keeps serving', async () => {
    const rt = make({ warm: { default: 1 }, capacity: 1 });
    await rt.register('hog', basic.hog, { module: MODULE });
    await rt.register('echo', basic.echo, { module: MODULE });
    await rt.start();
    const hog = await rt.invoke('hog', {});
    await until(() => results.some((r) => r.messageId === hog.id));
    expect(results[0]!.error).toMatchObject({ code: 'function_out_of_memory', retryable: false });
    expect(results[0]!.final).toBe(true);
    const echo = await rt.invoke('echo', { n: 5 });
    await until(() => results.some((r) => r.messageId === echo.id));
    expect(results.find((r) => r.messageId === echo.id)).toMatchObject({ ok: true, output: { n: 5 } });
    expect(rt.poolStats()['thread:default']).toMatchObject({ replaced: 1, live: 1 });
  });

  it('in a warm pool no worker is started on the invocation path', async () => {
    const rt = make({ warm: { default: 2 }, capacity: 2 });
    await rt.register('echo', basic.echo, { module: MODULE });
    await rt.start();
    expect(rt.poolStats()['thread:default']).toMatchObject({ started: 2, live: 2 });
    await Promise.all(Array.from({ length: 40 }, (_, n) => rt.invoke('echo', { n })));
    await until(() => results.length === 40);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(rt.poolStats()['thread:default']).toMatchObject({ started: 2, startedOnInvocation: 0 });
  });

  it('micro-batching: 1,000 tiny invocations with batch max 50 reach the handler in at most 25 calls', async () => {
    const rt = make({ warm: { default: 2 } });
    await rt.register('tiny', basic.tiny, { module: MODULE });
    const ids = new Set<number>();
    for (let n = 0; n < 1_000; n++) ids.add((await rt.invoke('tiny', { n })).id);
    await rt.start();
    await until(() => results.length === 1_000, 60_000);
    const calls = new Set(results.map((r) => r.call));
    expect(calls.size).toBeLessThanOrEqual(25);
    expect(Math.max(...results.map((r) => r.batchSize))).toBe(50);
    expect(results.every((r) => r.ok && ids.has(r.messageId))).toBe(true);
    expect((await queue.counts('fn.tiny')).completed).toBe(1_000);
  });

  it('delivers results to a reply queue exactly once per invocation', async () => {
    const rt = make();
    await rt.register('echo', basic.echo, { module: MODULE });
    await rt.start();
    const { id } = await rt.invoke('echo', { n: 3 }, { replyTo: 'replies' });
    await until(() => results.length === 1);
    const [reply] = await queue.dequeue<{ messageId: number; ok: boolean; output: unknown }>({
      queue: 'replies',
      max: 10,
    });
    expect(reply!.payload).toMatchObject({ messageId: id, ok: true, output: { n: 3 } });
    expect(reply!.idempotencyKey).toBe(`result:${id}`);
  });

  it('file I/O: a blob input is a local path to the handler, and its output files come back as blobs', async () => {
    const blobs = await openBlobStore(store, { dir: join(dir, 'blobs') });
    const rt = make({ blobs, workDir: join(dir, 'work') });
    await rt.register('upper', basic.upper, { module: MODULE });
    await rt.start();
    const doc = await blobs.putBuffer('hello blobs', { contentType: 'text/plain' });
    const { id } = await rt.invoke('upper', { doc: doc.ref }, { replyTo: 'replies' });
    const bad = await rt.invoke('upper', { doc: 'not-a-ref' });
    await until(() => results.length === 2);
    const ok = results.find((r) => r.messageId === id)!;
    expect(ok).toMatchObject({ ok: true, output: { chars: 11 } });
    expect(Object.keys(ok.files!).sort()).toEqual(['meta/length.txt', 'upper.txt']);
    expect((await blobs.getBuffer(ok.files!['upper.txt']!)).toString()).toBe('HELLO BLOBS');
    expect((await blobs.getBuffer(ok.files!['meta/length.txt']!)).toString()).toBe('11');
    const [reply] = await queue.dequeue<{ files: Record<string, string> }>({ queue: 'replies', max: 1 });
    expect(reply!.payload.files).toEqual(ok.files);
    expect(results.find((r) => r.messageId === bad.id)).toMatchObject({ ok: false, final: true });
    expect(results.find((r) => r.messageId === bad.id)!.error).toMatchObject({
      code: 'function_input_invalid',
    });
    // Each attempt's directory is removed once it settled.
    expect(readdirSync(join(dir, 'work'))).toEqual([]);
    await blobs.close();
  });

  it('with the slot saturated by low-priority work, a high-priority invocation is the next one started', async () => {
    const rt = make({ capacity: 1, warm: { default: 1 } });
    await rt.register('slow', basic.slow, { module: MODULE });
    await rt.register('echo', basic.echo, { module: MODULE });
    await rt.start();
    const low = [];
    for (let i = 0; i < 3; i++)
      low.push((await rt.invoke('slow', { ms: 300 }, { priority: 2_000_000 + i })).id);
    // The first low-priority invocation holds the only slot before the high-priority one arrives (under
    // load its fetch can take longer than any fixed pause).
    const running = (): number => rt.slotUse().pools.find((p) => p.pool === 'default')?.running ?? 0;
    await until(() => running() === 1 && results.length === 0);
    expect(rt.poolStats()['thread:default']!.started).toBe(1);
    await new Promise((r) => setTimeout(r, 100));
    const high = (await rt.invoke('echo', { n: 1 }, { priority: 1 })).id;
    await until(() => results.length === 4);
    // Start order, not result order: results are emitted as their commits return, and on PostgreSQL the
    // echo's quick commit can overtake the slow invocation's.
    const started = [...results].sort((a, b) => a.run!.startedAt - b.run!.startedAt);
    expect(started.map((r) => r.messageId)).toEqual([low[0], high, low[1], low[2]]);
  });

  it('command functions run an executable on blob inputs; what it writes comes back as blobs', async () => {
    const blobs = await openBlobStore(store, { dir: join(dir, 'blobs') });
    const rt = make({ blobs, workDir: join(dir, 'work') });
    const copy = commandFn({
      input: z.object({ doc: z.string(), as: z.string() }),
      command: 'cp',
      args: (i, f) => [f.inputs.doc!, i.as],
      timeoutMs: 5_000,
      attempts: 1,
    });
    const count = commandFn({
      input: z.object({ doc: z.string() }),
      output: z.number(),
      command: 'wc',
      args: (_i, f) => ['-c', f.inputs.doc!],
      parseOutput: (stdout) => Number(stdout.trim().split(/\s+/)[0]),
      timeoutMs: 5_000,
      attempts: 1,
    });
    rt.registerCommand('copy', copy, { files: ['doc'] });
    rt.registerCommand('count', count, { files: ['doc'] });
    await rt.start();
    const doc = await blobs.putBuffer('twelve bytes');
    const a = await rt.invoke('copy', { doc: doc.ref, as: 'x; touch pwned' });
    const b = await rt.invoke('count', { doc: doc.ref });
    await until(() => results.length === 2);
    const copied = results.find((r) => r.messageId === a.id)!;
    expect(copied).toMatchObject({ ok: true });
    // One literal argument: the file is named after the whole string, and nothing else ran.
    expect(Object.keys(copied.files!)).toEqual(['x; touch pwned']);
    expect(copied.files!['x; touch pwned']).toBe(doc.ref);
    expect(results.find((r) => r.messageId === b.id)).toMatchObject({ ok: true, output: 12 });
    await blobs.close();
  });

  it('versions: invocations made before a release run the code they were made for', async () => {
    const rt = make();
    const v1 = await rt.register('greet', (await import('../fixtures/functions/greet-v1.js')).greet, {
      module: 'test/fixtures/functions/greet-v1.ts',
    });
    const before = await rt.invoke('greet', {});
    const v2 = await rt.register('greet', (await import('../fixtures/functions/greet-v2.js')).greet, {
      module: 'test/fixtures/functions/greet-v2.ts',
    });
    const after = await rt.invoke('greet', {});
    expect(v1.version).not.toBe(v2.version);
    expect(rt.registry.versions('greet')).toEqual([v1.version, v2.version]);
    await rt.start();
    await until(() => results.length === 2);
    expect(results.find((r) => r.messageId === before.id)).toMatchObject({
      output: 'hello from v1',
      version: v1.version,
    });
    expect(results.find((r) => r.messageId === after.id)).toMatchObject({
      output: 'hello from v2',
      version: v2.version,
    });
  });

  it('runs a sandboxed function in a child process that does not see the secrets of the node', async () => {
    process.env.COSMOS_TEST_SECRET = 'hunter2';
    try {
      const rt = make();
      await rt.register('isolated', (await import('../fixtures/functions/greet-v2.js')).isolated, {
        module: 'test/fixtures/functions/greet-v2.ts',
      });
      await rt.start();
      const { id } = await rt.invoke('isolated', {});
      await until(() => results.length === 1, 30_000);
      const r = results.find((x) => x.messageId === id)!;
      expect(r.ok).toBe(true);
      expect(r.output).toMatchObject({ secret: null });
      expect((r.output as { pid: number }).pid).not.toBe(process.pid);
    } finally {
      delete process.env.COSMOS_TEST_SECRET;
    }
  });

  it('captures what a handler prints and logs, per invocation, in threads and in the sandbox', async () => {
    const rt = make();
    await rt.register('chatty', basic.chatty, { module: MODULE });
    await rt.register('chattySandboxed', basic.chattySandboxed, { module: MODULE });
    await rt.start();
    const ids = [(await rt.invoke('chatty', { n: 1 })).id, (await rt.invoke('chattySandboxed', { n: 2 })).id];
    await until(() => results.length === 2, 30_000);
    for (const [n, id] of ids.entries()) {
      const r = results.find((x) => x.messageId === id)!;
      expect(r.ok).toBe(true);
      expect(r.run!.logs!.map((l) => [l.level, l.msg])).toEqual([
        ['info', `starting ${n + 1}`],
        ['warn', `half way ${n + 1}`],
        ['info', `done ${n + 1}`],
      ]);
      expect(r.run!.logs![0]!.at).toBeGreaterThanOrEqual(r.run!.startedAt);
      expect(r.run!.worker).toMatch(n === 0 ? /^thread \d+$/ : /^sandbox pid \d+$/);
    }
  });

  it('passes every captured line through the redaction hook before keeping it', async () => {
    const rt = make({ redactLine: (text) => text.replace(/\d+/g, '[n]') });
    await rt.register('chatty', basic.chatty, { module: MODULE });
    await rt.start();
    await rt.invoke('chatty', { n: 42 });
    await until(() => results.length === 1);
    expect(results[0]!.run!.logs!.map((l) => l.msg)).toEqual(['starting [n]', 'half way [n]', 'done [n]']);
  });

  it('refuses an invalid input at invoke time, naming the path', async () => {
    const rt = make();
    await rt.register('echo', basic.echo, { module: MODULE });
    await expect(rt.invoke('echo', { n: 'x' })).rejects.toMatchObject({ code: 'function_input_invalid' });
    await expect(rt.invoke('nope', {})).rejects.toMatchObject({ code: 'function_not_found' });
  });
});
