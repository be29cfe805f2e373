import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundle } from '../../src/functions/bundler.js';
import type { RunInput } from '../../src/functions/runtimes/runner.js';
import { ThreadRunner } from '../../src/functions/runtimes/thread-runner.js';
import { failureOf } from '../support/failures.js';

let dir: string;
let module: string;
const runners: ThreadRunner[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cosmos-thread-'));
  module = (await bundle('test/fixtures/functions/basic.ts', dir)).path;
});
afterAll(async () => {
  await Promise.all(runners.map((r) => r.close()));
  rmSync(dir, { recursive: true, force: true });
});

function start(memoryMb = 256): ThreadRunner {
  const r = ThreadRunner.start({ memoryMb });
  runners.push(r);
  return r;
}

const call = (name: string, input: unknown, extra: Partial<RunInput> = {}): RunInput => ({
  ref: { module, name },
  input,
  batch: false,
  attempt: 1,
  invocationId: `inv-${name}`,
  ...extra,
});

describe('thread runner', () => {
  it('runs a handler with validated input and output', async () => {
    const r = start();
    await r.ready;
    expect(await r.run(call('echo', { n: 7 }), { timeoutMs: 5_000 })).toEqual({ n: 7 });
    const bad = await failureOf(r.run(call('echo', { n: 'x' }), { timeoutMs: 5_000 }));
    expect(bad).toMatchObject({ failure: 'input', code: 'function_input_invalid', retryable: false });
    const out = await failureOf(r.run(call('badOutput', {}), { timeoutMs: 5_000 }));
    expect(out).toMatchObject({ failure: 'output', retryable: false });
    expect(r.dead).toBe(false);
  });

  it('send() reports each outcome once to its callback with its token; a dead runner reports on a later tick', async () => {
    const r = start();
    await r.ready;
    const outcomes: [string, boolean, unknown][] = [];
    const got = new Promise<void>((resolve) => {
      const done = (token: string, ok: boolean, value: unknown): void => {
        outcomes.push([token, ok, value]);
        if (outcomes.length === 2) resolve();
      };
      r.send(call('echo', { n: 1 }), { timeoutMs: 5_000 }, done, 'good');
      r.send(call('echo', { n: 'x' }), { timeoutMs: 5_000 }, done, 'bad');
    });
    await got;
    expect(outcomes.map(([t, ok]) => [t, ok]).sort()).toEqual([
      ['bad', false],
      ['good', true],
    ]);
    expect(outcomes.find(([t]) => t === 'good')?.[2]).toEqual({ n: 1 });
    expect(outcomes.find(([t]) => t === 'bad')?.[2]).toMatchObject({ failure: 'input' });

    await r.close();
    let reported: unknown;
    r.send(call('echo', { n: 2 }), { timeoutMs: 5_000 }, (_t, ok, value) => (reported = { ok, value }), 0);
    expect(reported).toBeUndefined();
    await Promise.resolve();
    expect(reported).toMatchObject({ ok: false, value: { failure: 'worker_crash' } });
  });

  it('kills a CPU loop at its timeout and classifies it; runs sharing the thread fail as collateral', async () => {
    const r = start();
    await r.ready;
    const started = Date.now();
    const collateral = r.run(call('slow', { ms: 10_000 }, { invocationId: 'other' }), { timeoutMs: 20_000 });
    const f = await failureOf(r.run(call('spin', {}), { timeoutMs: 300 }));
    expect(f).toMatchObject({ failure: 'timeout', code: 'function_timeout', retryable: true });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await failureOf(collateral)).toMatchObject({ failure: 'worker_crash' });
    expect(r.dead).toBe(true);
  });

  it('classifies a heap blow-up as out of memory, not retryable, and the runner dies', async () => {
    const r = start(32);
    await r.ready;
    const died = new Promise<string>((resolve) => r.onDeath(resolve));
    const f = await failureOf(r.run(call('hog', {}), { timeoutMs: 30_000 }));
    expect(f).toMatchObject({ failure: 'out_of_memory', code: 'function_out_of_memory', retryable: false });
    expect(await died).toMatch(/out of memory/);
    expect(r.dead).toBe(true);
  });

  it('carries a handler error, and NonRetryableError stops retries', async () => {
    const r = start();
    await r.ready;
    const f = await failureOf(r.run(call('flaky', { failUntil: 3 }), { timeoutMs: 5_000 }));
    expect(f).toMatchObject({ failure: 'user', code: 'function_failed', retryable: true });
    expect(f.message).toMatch(/attempt 1 fails/);
    expect(await failureOf(r.run(call('refuse', {}), { timeoutMs: 5_000 }))).toMatchObject({
      retryable: false,
    });
  });

  it('answers a batch item by item', async () => {
    const r = start();
    await r.ready;
    const out = await r.run(call('tiny', [{ n: 1 }, { n: -1 }, { n: 'bad' }, { n: 4 }], { batch: true }), {
      timeoutMs: 5_000,
    });
    expect(out).toMatchObject({
      outputs: [{ n: 2 }, null, null, { n: 8 }],
      failed: { 1: { message: 'minus one' }, 2: { failure: 'input' } },
    });
    expect(Object.keys((out as { failed: object }).failed)).toEqual(['1', '2']);
  });

  it('answers an all-good batch with its outputs alone', async () => {
    const r = start();
    await r.ready;
    const out = await r.run(call('tiny', [{ n: 1 }, { n: 2 }], { batch: true }), { timeoutMs: 5_000 });
    expect(out).toEqual({ outputs: [{ n: 2 }, { n: 4 }] });
  });

  it('keeps batch items that are undefined as a whole, in and out (JSON would make them null)', async () => {
    const r = start();
    await r.ready;
    const opts = { timeoutMs: 5_000 };
    // An input missing altogether reaches the handler as undefined; an output missing altogether comes back so.
    expect(await r.run(call('optionals', [undefined, 2], { batch: true }), opts)).toStrictEqual({
      outputs: [0, 4],
    });
    expect(await r.run(call('optionals', [0, 3], { batch: true }), opts)).toStrictEqual({
      outputs: [undefined, 6],
    });
  });

  it('fails a batch whose inputs or outputs JSON cannot carry, and the thread lives on', async () => {
    const r = start();
    await r.ready;
    const input = await failureOf(r.run(call('tiny', [{ n: 1n }], { batch: true }), { timeoutMs: 5_000 }));
    expect(input.failure).toBe('input');
    expect(input.message).toMatch(/not a JSON value/);
    const output = await failureOf(r.run(call('bigints', [{ n: 1 }], { batch: true }), { timeoutMs: 5_000 }));
    expect(output.failure).toBe('output');
    expect(output.message).toMatch(/not a JSON value/);
    expect(r.dead).toBe(false);
    expect(await r.run(call('tiny', [{ n: 3 }], { batch: true }), { timeoutMs: 5_000 })).toEqual({
      outputs: [{ n: 6 }],
    });
  });
});
