import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CosmosError } from '../../src/errors.js';
import { bundle } from '../../src/functions/bundler.js';
import type { LogLevel } from '../../src/functions/protocol.js';
import type { RunOptions } from '../../src/functions/runtimes/runner.js';
import {
  permissionFlag,
  SandboxRunner,
  sandboxExecArgv,
  type SandboxOptions,
} from '../../src/functions/runtimes/sandbox-runner.js';
import { failureOf } from '../support/failures.js';

// Real child processes under Node's permission model: every denial below is attempted by code inside the
// sandbox, and asserted on what reached the parent. Run on Node 20 and on Node 24 (see docs/sandbox.md).

const FIXTURE = fileURLToPath(new URL('../fixtures/sandbox/functions.ts', import.meta.url));

let dir: string;
let modulePath: string;
let outside: string;
let runner: SandboxRunner;
const started: SandboxRunner[] = [];
const savedEnv = { secret: process.env.COSMOS_TEST_SECRET, allowed: process.env.COSMOS_ALLOWED };

/** What the caller does before start(): the function's allow-list applied to the node's environment. */
function allowListed(names: string[]): Record<string, string> {
  return Object.fromEntries(
    names.flatMap((n) => (process.env[n] === undefined ? [] : [[n, process.env[n]]])),
  );
}

function start(options: Partial<SandboxOptions> = {}): SandboxRunner {
  const r = SandboxRunner.start({ bundle: modulePath, memoryMb: 128, env: {}, ...options });
  started.push(r);
  return r;
}

let invocations = 0;
function call(
  r: SandboxRunner,
  name: string,
  input: unknown,
  options: Partial<RunOptions> = {},
): Promise<unknown> {
  return r.run(
    {
      ref: { module: modulePath, name },
      input,
      batch: false,
      attempt: 1,
      invocationId: `inv-${++invocations}`,
    },
    { timeoutMs: 10_000, ...options },
  );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cosmos-sandbox-test-'));
  modulePath = (await bundle(FIXTURE, join(dir, 'bundles'))).path;
  // A file beside the bundle: the allow-list is the bundle file itself, not its directory.
  outside = join(dir, 'bundles', 'secret.txt');
  writeFileSync(outside, 'top secret');
  process.env.COSMOS_TEST_SECRET = 'hunter2';
  process.env.COSMOS_ALLOWED = 'visible';
  runner = start({ env: allowListed(['COSMOS_ALLOWED']) });
  await runner.ready;
});

afterAll(async () => {
  await Promise.all(started.map((r) => r.close()));
  for (const p of started.map((r) => r.pid)) if (p !== undefined) expect(alive(p)).toBe(false);
  if (savedEnv.secret === undefined) delete process.env.COSMOS_TEST_SECRET;
  else process.env.COSMOS_TEST_SECRET = savedEnv.secret;
  if (savedEnv.allowed === undefined) delete process.env.COSMOS_ALLOWED;
  else process.env.COSMOS_ALLOWED = savedEnv.allowed;
  rmSync(dir, { recursive: true, force: true });
});

describe('sandbox flags', () => {
  it('picks the permission flag this Node knows, and grants nothing but two reads', () => {
    const flag = permissionFlag();
    expect(flag).toBe(
      process.allowedNodeEnvironmentFlags.has('--permission') ? '--permission' : '--experimental-permission',
    );
    const argv = sandboxExecArgv('/r/entry.mjs', { bundle: '/b/fn.mjs', memoryMb: 96 });
    expect(argv).toContain(flag);
    expect(argv.filter((a) => a.startsWith('--allow-'))).toEqual([
      '--allow-fs-read=/r/entry.mjs',
      '--allow-fs-read=/b/fn.mjs',
    ]);
    expect(argv).toContain('--disallow-code-generation-from-strings');
    expect(argv).toContain('--max-old-space-size=96');
  });

  it('runs the child on the same Node with those flags', async () => {
    const self = (await call(runner, 'describeSelf', {})) as { execArgv: string[]; version: string };
    expect(self.version).toBe(process.version);
    expect(self.execArgv).toContain(permissionFlag());
    expect(self.execArgv).toContain('--disallow-code-generation-from-strings');
    expect(self.execArgv.some((a) => /^--allow-(fs-write|child-process|worker|addons|wasi)/.test(a))).toBe(
      false,
    );
  });

  it('refuses environment variables Node itself reads', () => {
    expect(() =>
      SandboxRunner.start({
        bundle: modulePath,
        memoryMb: 64,
        env: { NODE_OPTIONS: '--allow-child-process' },
      }),
    ).toThrow(CosmosError);
  });
});

describe('a sandboxed function', () => {
  it('returns its output from another process, with logs and heartbeats delivered', async () => {
    const logs: [LogLevel, string][] = [];
    let beats = 0;
    const out = await call(
      runner,
      'double',
      { n: 21 },
      { onLog: (l, m) => logs.push([l, m]), onHeartbeat: () => beats++ },
    );
    expect(out).toEqual({ doubled: 42, pid: runner.pid });
    expect(runner.pid).not.toBe(process.pid);
    expect(logs).toEqual([['info', 'doubling 21']]);
    expect(beats).toBeGreaterThanOrEqual(1);
    expect(runner.load).toBe(0);
  });

  it('classifies a bad input as `input`, and the runner lives on', async () => {
    const f = await failureOf(call(runner, 'double', { n: 'x' }));
    expect(f.failure).toBe('input');
    expect(f.code).toBe('function_input_invalid');
    expect(f.retryable).toBe(false);
    expect(f.details?.issues).toEqual([expect.objectContaining({ path: ['n'] })]);
    expect(runner.dead).toBe(false);
  });

  it('carries values JSON cannot (advanced serialization works under the permission model)', async () => {
    const out = (await call(runner, 'richValue', {})) as { when: unknown; big: unknown; seen: unknown };
    expect(out.when).toBeInstanceOf(Date);
    expect(out.big).toBe(2n ** 70n);
    expect(out.seen).toEqual(new Map([['a', 1]]));
  });

  it('refuses to run a module other than its bundle', async () => {
    const f = await failureOf(
      runner.run(
        {
          ref: { module: FIXTURE, name: 'double' },
          input: { n: 1 },
          batch: false,
          attempt: 1,
          invocationId: 'x',
        },
        { timeoutMs: 1_000 },
      ),
    );
    expect(f.failure).toBe('platform');
  });

  it('stops a handler on cancel through its signal', async () => {
    const logs: string[] = [];
    const p = runner.run(
      {
        ref: { module: modulePath, name: 'waitForCancel' },
        input: {},
        batch: false,
        attempt: 1,
        invocationId: 'cancel-me',
      },
      { timeoutMs: 10_000, onLog: (_level, message) => logs.push(message) },
    );
    // Cancel once the handler is waiting, so the abort reaches it through its listener.
    await vi.waitFor(() => expect(logs).toEqual(['waiting for cancel']));
    runner.cancel('cancel-me');
    const f = await failureOf(p);
    expect(f.failure).toBe('user');
    expect(f.message).toContain('stopped on cancel');
    expect(runner.dead).toBe(false);
  });
});

describe('the sandbox denies', () => {
  it('reading a file outside its bundle, with ERR_ACCESS_DENIED reaching the parent', async () => {
    expect(readFileSync(outside, 'utf8')).toBe('top secret'); // the parent can: the denial is the sandbox's
    for (const path of [outside, '/etc/hostname']) {
      const f = await failureOf(call(runner, 'readPath', { path }));
      expect(f.failure).toBe('user');
      expect(f.details?.errorCode).toBe('ERR_ACCESS_DENIED');
    }
  });

  it('but reads a path it was given with allowRead', async () => {
    const r = start({ allowRead: [outside] });
    await expect(call(r, 'readPath', { path: outside })).resolves.toBe('top secret');
    const f = await failureOf(call(r, 'readPath', { path: '/etc/hostname' }));
    expect(f.details?.errorCode).toBe('ERR_ACCESS_DENIED');
  });

  it('spawning a process', async () => {
    expect(spawnSync('true').status).toBe(0); // the parent can
    const f = await failureOf(call(runner, 'spawnTrue', {}));
    expect(f.details?.errorCode).toBe('ERR_ACCESS_DENIED');
  });

  it("reading the parent's secrets: the environment is the allow-list alone", async () => {
    expect(process.env.COSMOS_TEST_SECRET).toBe('hunter2'); // the parent has it
    const seen = (await call(runner, 'readEnv', {
      names: ['COSMOS_TEST_SECRET', 'COSMOS_ALLOWED', 'PATH', 'HOME'],
    })) as {
      values: Record<string, string | null>;
      count: number;
    };
    expect(seen.values).toEqual({
      COSMOS_TEST_SECRET: null,
      COSMOS_ALLOWED: 'visible',
      PATH: null,
      HOME: null,
    });
    expect(seen.count).toBe(1);
  });

  it('starting a worker thread', async () => {
    const f = await failureOf(call(runner, 'startWorker', {}));
    expect(f.details?.errorCode).toBe('ERR_ACCESS_DENIED');
  });

  it('generating code from strings (eval and new Function)', async () => {
    for (const how of ['eval', 'Function']) {
      const f = await failureOf(call(runner, 'generateCode', { how }));
      expect(f.details?.errorName).toBe('EvalError');
      expect(f.message).toMatch(/Code generation from strings disallowed/);
    }
  });

  it('writing a file, even beside its own bundle', async () => {
    const target = join(dir, 'bundles', 'escaped.txt');
    const f = await failureOf(call(runner, 'writePath', { path: target }));
    expect(f.details?.errorCode).toBe('ERR_ACCESS_DENIED');
    expect(existsSync(target)).toBe(false);
  });
});

describe('a sandbox that must die', () => {
  it('is killed at the timeout: `timeout` for the culprit, `worker_crash` for the collateral, the process gone', async () => {
    const r = start();
    await r.ready;
    const pid = r.pid!;
    const deaths: string[] = [];
    r.onDeath((reason) => deaths.push(reason));
    const bystander = failureOf(call(r, 'sleepMs', { ms: 20_000 }, { timeoutMs: 30_000 }));
    const t0 = Date.now();
    const f = await failureOf(call(r, 'spin', {}, { timeoutMs: 500 }));
    const elapsed = Date.now() - t0;
    expect(f.failure).toBe('timeout');
    expect(f.code).toBe('function_timeout');
    expect(elapsed).toBeGreaterThanOrEqual(490);
    expect(elapsed).toBeLessThan(5_000);
    expect(alive(pid)).toBe(false);
    expect(r.dead).toBe(true);
    expect((await bystander).failure).toBe('worker_crash');
    expect(deaths).toHaveLength(1);
    expect(deaths[0]).toMatch(/timed out/);
    expect((await failureOf(call(r, 'double', { n: 1 }))).failure).toBe('worker_crash');
  });

  it('is classified `out_of_memory` when the heap blows, with V8 last words in the details', async () => {
    const r = start({ memoryMb: 64 });
    await r.ready;
    const f = await failureOf(call(r, 'blowHeap', {}, { timeoutMs: 30_000 }));
    expect(f.failure).toBe('out_of_memory');
    expect(f.code).toBe('function_out_of_memory');
    expect(f.retryable).toBe(false);
    expect(String(f.details?.stderrTail)).toMatch(/heap out of memory|Allocation failed/);
    expect(r.dead).toBe(true);
    expect(alive(r.pid!)).toBe(false);
  });

  it('is classified `worker_crash` when the process exits on its own', async () => {
    const r = start();
    const f = await failureOf(call(r, 'exitProcess', { code: 7 }));
    expect(f.failure).toBe('worker_crash');
    expect(f.details?.exitCode).toBe(7);
    expect(r.dead).toBe(true);
  });

  it('fails its runs with `worker_crash` when closed, and the process exits', async () => {
    const r = start();
    await r.ready;
    const pid = r.pid!;
    const pending = failureOf(call(r, 'spin', {}, { timeoutMs: 30_000 }));
    await r.close();
    expect((await pending).failure).toBe('worker_crash');
    expect(alive(pid)).toBe(false);
    expect(r.dead).toBe(true);
  });
});
