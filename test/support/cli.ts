import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface CliRun {
  child: ChildProcess;
  output: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs the `cosmos` CLI from source (through tsx), collecting stdout and stderr lines. */
export function cosmos(args: string[], env: NodeJS.ProcessEnv = {}): CliRun {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  createInterface({ input: child.stdout }).on('line', (l) => output.push(l));
  createInterface({ input: child.stderr }).on('line', (l) => output.push(l));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    // `close`, not `exit`: it comes once stdout and stderr are drained, so every line has been read.
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, output, exited };
}

/** Resolves with the URL the server printed in its "listening on" line. */
export async function listeningUrl(run: CliRun, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const line of run.output) {
      const m = /listening on (http:\/\/\S+)/.exec(line);
      if (m) return m[1]!;
    }
    if (run.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no "listening on" line:\n${run.output.join('\n')}`);
}

/** Stops a CLI process still running (SIGTERM, its graceful shutdown) and waits for it to exit. */
export async function stopCli(run: CliRun | undefined): Promise<void> {
  if (!run || run.child.exitCode !== null || run.child.signalCode !== null) return;
  run.child.kill('SIGTERM');
  await run.exited;
}

/** Resolves once the CLI printed a line matching `pattern` after its first `from` lines (output arrives late). */
export async function waitForLine(run: CliRun, pattern: RegExp, from = 0, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (run.output.slice(from).some((l) => pattern.test(l))) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no line matching ${String(pattern)}:\n${run.output.join('\n')}`);
}
