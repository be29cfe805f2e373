import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import {
  commandFn,
  isCommandDefinition,
  runCommand,
  type CommandFiles,
} from '../../src/functions/runtimes/command.js';
import { failureOf } from '../support/failures.js';

// Real executables (coreutils and sh, run as programs: never through a shell of ours).

let root: string;
let src: string;
let n = 0;
const saved = { secret: process.env.COSMOS_TEST_SECRET, allowed: process.env.COSMOS_ALLOWED };

/** A fresh output directory per invocation, as the runtime gives one. */
function files(inputs: Record<string, string> = {}): CommandFiles {
  return { inputs, outDir: join(root, `out-${++n}`) };
}

/** Gone, or a zombie: killed and only waiting for its new parent to reap it. */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'cosmos-command-test-'));
  src = join(root, 'input.txt');
  writeFileSync(src, 'twelve bytes');
  process.env.COSMOS_TEST_SECRET = 'hunter2';
  process.env.COSMOS_ALLOWED = 'visible';
});

afterAll(() => {
  if (saved.secret === undefined) delete process.env.COSMOS_TEST_SECRET;
  else process.env.COSMOS_TEST_SECRET = saved.secret;
  if (saved.allowed === undefined) delete process.env.COSMOS_ALLOWED;
  else process.env.COSMOS_ALLOWED = saved.allowed;
  rmSync(root, { recursive: true, force: true });
});

describe('command functions', () => {
  it('run an executable on an input file and report the files it wrote to outDir', async () => {
    const copy = commandFn({
      input: z.object({ name: z.string() }),
      command: 'cp',
      args: (i, f) => [f.inputs.src!, i.name],
    });
    expect(isCommandDefinition(copy)).toBe(true);
    const f = files({ src });
    const r = await runCommand(copy, { name: 'copy.txt' }, f);
    // A relative name lands in outDir: it is the program's working directory.
    expect(r.outputs).toEqual([join(f.outDir, 'copy.txt')]);
    expect(readFileSync(r.outputs[0]!, 'utf8')).toBe('twelve bytes');
  });

  it('turn stdout into a validated output', async () => {
    const size = commandFn({
      input: z.object({}),
      output: z.number().int(),
      command: 'wc',
      args: (_i, f) => ['-c', f.inputs.src!],
      parseOutput: (stdout) => Number(stdout.trim().split(/\s+/)[0]),
    });
    const r = await runCommand(size, {}, files({ src }));
    expect(r.output).toBe(12);
    expect(r.outputs).toEqual([]);
    // Without parseOutput the output is stdout ("12 <path>"), not the number the schema wants.
    const wrong = commandFn({
      input: z.object({}),
      output: z.number(),
      command: 'wc',
      args: (_i, f) => ['-c', f.inputs.src!],
    });
    expect((await failureOf(runCommand(wrong, {}, files({ src })))).failure).toBe('output');
  });

  it('classify a bad input as `input` without running anything', async () => {
    const echo = commandFn({ input: z.object({ text: z.string() }), command: 'echo', args: (i) => [i.text] });
    const f = await failureOf(runCommand(echo, { text: 42 }, files()));
    expect(f.failure).toBe('input');
    expect(f.code).toBe('function_input_invalid');
  });

  it('fail with `user`, the exit code and the stderr tail on a non-zero exit', async () => {
    const failing = commandFn({
      input: z.object({}),
      command: 'sh',
      args: () => ['-c', 'echo "it broke" >&2; exit 3'],
    });
    const f = await failureOf(runCommand(failing, {}, files()));
    expect(f.failure).toBe('user');
    expect(f.code).toBe('function_failed');
    expect(f.details?.exitCode).toBe(3);
    expect(f.details?.stderrTail).toBe('it broke\n');
    expect(f.message).toContain('it broke');
  });

  it('kill the whole process group at the timeout: `timeout`, and nothing left running', async () => {
    // sh starts a background sleep and waits: killing only sh would leave the sleep behind.
    const slow = commandFn({
      input: z.object({}),
      command: 'sh',
      args: () => ['-c', 'sleep 30 & echo $! > sleeper.pid; wait'],
    });
    const f0 = files();
    const t0 = Date.now();
    const f = await failureOf(runCommand(slow, {}, f0, { timeoutMs: 400 }));
    const elapsed = Date.now() - t0;
    expect(f.failure).toBe('timeout');
    expect(f.code).toBe('function_timeout');
    expect(elapsed).toBeGreaterThanOrEqual(390);
    expect(elapsed).toBeLessThan(5_000);
    const shell = f.details?.pid as number;
    const sleeper = Number(readFileSync(join(f0.outDir, 'sleeper.pid'), 'utf8'));
    expect(sleeper).toBeGreaterThan(0);
    expect(running(shell)).toBe(false);
    await vi.waitFor(() => expect(running(sleeper)).toBe(false), { timeout: 2_000 });
  });

  it('kill a plain `sleep 30` at the timeout', async () => {
    const sleep = commandFn({ input: z.object({}), command: 'sleep', args: () => ['30'], timeoutMs: 300 });
    const f = await failureOf(runCommand(sleep, {}, files()));
    expect(f.failure).toBe('timeout');
    expect(running(f.details?.pid as number)).toBe(false);
  });

  it('stop on abort with `worker_crash`', async () => {
    const sleep = commandFn({ input: z.object({}), command: 'sleep', args: () => ['30'] });
    const abort = new AbortController();
    const p = failureOf(runCommand(sleep, {}, files(), { signal: abort.signal }));
    setTimeout(() => abort.abort(), 100);
    const f = await p;
    expect(f.failure).toBe('worker_crash');
    expect(f.details?.canceled).toBe(true);
    expect(running(f.details?.pid as number)).toBe(false);
  });

  it('fail with `platform`, naming the command, when the executable is missing', async () => {
    for (const command of ['cosmos-no-such-program', '/nonexistent/bin/ffmpeg']) {
      const missing = commandFn({ input: z.object({}), command, args: () => [] });
      const f = await failureOf(runCommand(missing, {}, files()));
      expect(f.failure).toBe('platform');
      expect(f.code).toBe('platform_error');
      expect(f.message).toContain(command);
    }
  });

  it('pass an input full of shell syntax as one literal argument', async () => {
    // Were it ever run by a shell, the rm would only hit a path that does not exist; the touches are the canaries.
    const hostile =
      'x; rm -rf /cosmos-no-such-dir ; touch pwned $(touch pwned2) `touch pwned3` && echo owned | cat > pwned4';
    const printf = commandFn({
      input: z.object({ text: z.string() }),
      command: 'printf',
      args: (i) => ['[%s]', i.text],
      parseOutput: (stdout) => stdout,
    });
    const f = files();
    const r = await runCommand(printf, { text: hostile }, f);
    // One argument: printf formats it once, verbatim; a shell would have split it and run the rest.
    expect(r.output).toBe(`[${hostile}]`);
    expect(readdirSync(f.outDir)).toEqual([]);
    expect(existsSync(join(process.cwd(), 'pwned'))).toBe(false);
  });

  it('give the program the allow-listed environment only', async () => {
    const env = commandFn({
      input: z.object({}),
      command: 'sh',
      args: () => ['-c', 'echo "${COSMOS_TEST_SECRET:-unset} ${COSMOS_ALLOWED:-unset} ${HOME:-unset}"'],
      env: ['COSMOS_ALLOWED'],
    });
    expect(process.env.COSMOS_TEST_SECRET).toBe('hunter2');
    const r = await runCommand(env, {}, files());
    expect(r.output).toBe('unset visible unset');
  });
});
