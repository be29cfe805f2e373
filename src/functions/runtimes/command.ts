import { spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, readdirSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import type { z } from 'zod';
import { InvalidArgumentError } from '../../errors.js';
import { FUNCTION_DEFAULTS } from '../define.js';
import { FunctionFailure } from '../failure.js';
import { passThrough, readEnv } from '../../env.js';

/** Local paths of the file inputs, and the directory whose files become output blobs (also the cwd). */
export interface CommandFiles {
  inputs: Record<string, string>;
  outDir: string;
}

export interface CommandOptions<I extends z.ZodType, O extends z.ZodType> {
  input: I;
  output?: O;
  /** An absolute path, or a name looked up on the node's PATH. */
  command: string;
  /** The argument vector. Each element reaches the program as one argument, whatever characters it holds. */
  args: (input: z.output<I>, files: CommandFiles) => string[];
  /** Names of the node's environment variables the program may see; nothing else is passed. */
  env?: string[];
  timeoutMs?: number;
  attempts?: number;
  pool?: string;
  /** Turns stdout into the output; without it the output is stdout, trimmed. */
  parseOutput?: (stdout: string, files: CommandFiles) => z.input<O>;
}

export interface CommandDefinition<I = unknown, O = unknown> {
  readonly kind: 'cosmos.command';
  readonly input: z.ZodType<I>;
  readonly output?: z.ZodType<O>;
  readonly command: string;
  // A method, not a property: any definition then fits CommandDefinition (parameters of methods are bivariant).
  args(input: I, files: CommandFiles): string[];
  readonly env: string[];
  readonly timeoutMs: number;
  readonly attempts: number;
  readonly pool: string;
  readonly parseOutput?: (stdout: string, files: CommandFiles) => unknown;
}

export interface CommandResult {
  output: unknown;
  /** Absolute paths of the files the program created or changed in outDir. */
  outputs: string[];
  stdoutTail: string;
  stderrTail: string;
}

/** stdout is parsed whole, so it is held whole, up to this. Bigger results belong in files. */
const STDOUT_MAX = 16 * 1024 * 1024;
const STDERR_KEEP = 64 * 1024;
const TAIL = 4 * 1024;
/** After the program exits, how long to wait for its pipes to drain before answering anyway. */
const DRAIN_MS = 250;

/**
 * A function that runs an executable on files (SPEC §6: ffmpeg and the like). It runs in the node's process
 * tree, not in a sandbox: the program has the node's user and files. What is controlled is what it is told:
 * the arguments are a vector (never a shell line, so no input can inject a command) and the environment is
 * the allow-list alone.
 */
export function commandFn<I extends z.ZodType, O extends z.ZodType = z.ZodUnknown>(
  options: CommandOptions<I, O>,
): CommandDefinition<z.output<I>, z.output<O>> {
  if (typeof options.command !== 'string' || options.command.trim() === '')
    throw new InvalidArgumentError('commandFn(): command must name an executable');
  if (typeof options.args !== 'function')
    throw new InvalidArgumentError('commandFn(): args must be a function returning the argument vector');
  if (!options.input) throw new InvalidArgumentError('commandFn(): an input schema (zod) is required');
  for (const [name, v] of [
    ['timeoutMs', options.timeoutMs],
    ['attempts', options.attempts],
  ] as const)
    if (v !== undefined && !(Number.isFinite(v) && v >= 1))
      throw new InvalidArgumentError(`commandFn(): ${name} must be a number >= 1, got ${String(v)}`, {
        option: name,
      });
  return {
    kind: 'cosmos.command',
    input: options.input as z.ZodType<z.output<I>>,
    ...(options.output && { output: options.output as z.ZodType<z.output<O>> }),
    command: options.command,
    args: options.args,
    env: [...(options.env ?? [])],
    timeoutMs: options.timeoutMs ?? FUNCTION_DEFAULTS.timeoutMs,
    attempts: options.attempts ?? FUNCTION_DEFAULTS.attempts,
    pool: options.pool ?? FUNCTION_DEFAULTS.pool,
    ...(options.parseOutput && { parseOutput: options.parseOutput }),
  };
}

export function isCommandDefinition(v: unknown): v is CommandDefinition {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'cosmos.command';
}

/**
 * Runs one invocation: validates the input, runs the program in outDir, and answers with its output and the
 * files it wrote. The program and everything it started form one process group, killed as a whole at the
 * timeout or on abort, and swept after it exits so nothing it spawned outlives the invocation.
 */
export async function runCommand(
  def: CommandDefinition,
  rawInput: unknown,
  files: CommandFiles,
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<CommandResult> {
  const name = def.command;
  const parsed = def.input.safeParse(rawInput);
  if (!parsed.success) throw invalid(name, 'input', parsed.error);
  let args: string[];
  try {
    args = def.args(parsed.data, files);
  } catch (e) {
    throw new FunctionFailure('user', `${name}: args() threw: ${String(e)}`, { command: name }, false);
  }
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string'))
    throw new FunctionFailure(
      'user',
      `${name}: args() must return an array of strings`,
      { command: name },
      false,
    );
  const executable = findExecutable(name);
  const outDir = resolve(files.outDir);
  mkdirSync(outDir, { recursive: true });
  const before = snapshot(outDir);
  const run = await execute(executable, args, {
    cwd: outDir,
    env: pickEnv(def.env),
    timeoutMs: options.timeoutMs ?? def.timeoutMs,
    signal: options.signal,
  });
  const details = { command: name, pid: run.pid, stderrTail: run.stderr.slice(-TAIL) };
  if (run.outcome === 'timeout')
    throw new FunctionFailure(
      'timeout',
      `${name}: timed out after ${options.timeoutMs ?? def.timeoutMs} ms`,
      details,
    );
  if (run.outcome === 'aborted')
    throw new FunctionFailure('worker_crash', `${name}: canceled`, { ...details, canceled: true });
  if (run.signal !== null)
    throw new FunctionFailure('worker_crash', `${name}: killed by ${run.signal}`, {
      ...details,
      signal: run.signal,
    });
  if (run.code !== 0)
    throw new FunctionFailure('user', `${name}: exited with code ${run.code}${lastLine(run.stderr)}`, {
      ...details,
      exitCode: run.code,
    });
  const result = {
    outputs: changed(outDir, before),
    stdoutTail: run.stdout.slice(-TAIL),
    stderrTail: run.stderr.slice(-TAIL),
  };
  if (run.stdoutTruncated && def.parseOutput)
    throw new FunctionFailure(
      'output',
      `${name}: stdout is over ${STDOUT_MAX} bytes; write large results to outDir`,
      details,
    );
  let output: unknown;
  try {
    output = def.parseOutput ? def.parseOutput(run.stdout, files) : run.stdout.trim();
  } catch (e) {
    throw new FunctionFailure('output', `${name}: parseOutput() threw: ${String(e)}`, details);
  }
  if (def.output) {
    const checked = def.output.safeParse(output);
    if (!checked.success) throw invalid(name, 'output', checked.error);
    output = checked.data;
  }
  return { output, ...result };
}

interface Execution {
  outcome: 'exited' | 'timeout' | 'aborted';
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stdoutTruncated: boolean;
  stderr: string;
}

function execute(
  executable: string,
  args: string[],
  o: { cwd: string; env: Record<string, string>; timeoutMs: number; signal: AbortSignal | undefined },
): Promise<Execution> {
  return new Promise((done, fail) => {
    if (o.signal?.aborted)
      return done({
        outcome: 'aborted',
        pid: undefined,
        code: null,
        signal: null,
        stdout: '',
        stdoutTruncated: false,
        stderr: '',
      });
    const child = spawn(executable, args, {
      shell: false,
      cwd: o.cwd,
      env: o.env,
      // Its own process group, so a kill reaches whatever it started.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stdoutTruncated = false;
    let stderr = '';
    let outcome: Execution['outcome'] = 'exited';
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let settled = false;
    const killGroup = (): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // ESRCH: the whole group is gone already.
      }
    };
    const stop = (why: 'timeout' | 'aborted'): void => {
      if (exit) return;
      outcome = why;
      killGroup();
    };
    const timer = setTimeout(() => stop('timeout'), o.timeoutMs);
    const onAbort = (): void => stop('aborted');
    o.signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (): void => {
      if (settled || !exit) return;
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      done({ outcome, pid: child.pid, ...exit, stdout, stdoutTruncated, stderr });
    };
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      if (stdout.length + s.length <= STDOUT_MAX) stdout += s;
      else stdoutTruncated = true;
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr = (stderr + s).slice(-STDERR_KEEP);
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (child.pid !== undefined) return; // a kill that raced the exit; `exit` settles it
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      fail(
        new FunctionFailure('platform', `cannot run ${executable}: ${e.code ?? e.message}`, {
          command: executable,
          errorCode: e.code,
        }),
      );
    });
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      // Whatever it left running in its group goes with it.
      killGroup();
      setTimeout(finish, DRAIN_MS).unref();
    });
    child.on('close', finish);
  });
}

/**
 * Resolves a bare name on the node's PATH here, so the program needs no PATH of its own and a missing one is a
 * clear platform error naming it rather than a bare ENOENT.
 */
function findExecutable(command: string): string {
  const candidates = command.includes('/')
    ? [isAbsolute(command) ? command : resolve(command)]
    : readEnv()
        .path.split(delimiter)
        .filter(Boolean)
        .map((dir) => join(dir, command));
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      if (statSync(path).isFile()) return path;
    } catch {
      // not this one
    }
  }
  throw new FunctionFailure(
    'platform',
    `command "${command}" was not found${command.includes('/') ? ' or is not executable' : ' on the PATH of this node'}; install it on every node of the pool`,
    { command },
  );
}

const pickEnv = (names: string[]): Record<string, string> => passThrough(names);

type Snapshot = Map<string, string>;

function snapshot(dir: string): Snapshot {
  const seen: Snapshot = new Map();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const s = statSync(p);
        seen.set(p, `${s.size}:${s.mtimeMs}`);
      }
    }
  };
  walk(dir);
  return seen;
}

function changed(dir: string, before: Snapshot): string[] {
  return [...snapshot(dir)]
    .filter(([p, stamp]) => before.get(p) !== stamp)
    .map(([p]) => p)
    .sort();
}

function lastLine(stderr: string): string {
  const line = stderr.trimEnd().split('\n').pop()?.trim();
  return line ? `: ${line.slice(0, 300)}` : '';
}

function invalid(command: string, what: 'input' | 'output', error: z.ZodError): FunctionFailure {
  const issues = error.issues.map((i) => ({ path: i.path.map(String), message: i.message }));
  return new FunctionFailure(
    what,
    `${command}: ${what} does not match the function's schema: ${issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    { command, issues },
  );
}
