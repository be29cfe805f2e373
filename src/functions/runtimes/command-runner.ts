import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FunctionFailure } from '../failure.js';
import { runCommand, type CommandDefinition } from './command.js';
import { sendThroughRun, type RunDone, type RunInput, type RunOptions, type Runner } from './runner.js';

/**
 * Runs `command` functions: each run is its own process (started by runCommand, without a shell), so this
 * runner is only a dispatcher in the node; the slot scheduler bounds how many run at once.
 */
export class CommandRunner implements Runner {
  readonly kind = 'command';
  readonly name = 'command';
  readonly ready = Promise.resolve();
  private readonly running = new Map<string, AbortController>();

  constructor(private readonly commands: ReadonlyMap<string, CommandDefinition>) {}

  get dead(): boolean {
    return false;
  }

  get load(): number {
    return this.running.size;
  }

  async run(input: RunInput, options: RunOptions): Promise<unknown> {
    const def = this.commands.get(input.ref.name);
    if (!def)
      throw new FunctionFailure('platform', `command function ${input.ref.name} is not registered here`, {
        function: input.ref.name,
      });
    const abort = new AbortController();
    this.running.set(input.invocationId, abort);
    // Without declared files a command still needs a working directory of its own.
    const scratch = input.files ? undefined : await mkdtemp(join(tmpdir(), 'cosmos-command-'));
    try {
      const files = input.files ?? { inputs: {}, outDir: scratch! };
      const result = await runCommand(def, input.input, files, {
        timeoutMs: options.timeoutMs,
        signal: abort.signal,
      });
      return result.output;
    } finally {
      this.running.delete(input.invocationId);
      if (scratch) await rm(scratch, { recursive: true, force: true });
    }
  }

  send<T>(input: RunInput, options: RunOptions, done: RunDone<T>, token: T): void {
    sendThroughRun(this, input, options, done, token);
  }

  cancel(invocationId: string): void {
    this.running.get(invocationId)?.abort();
  }

  onDeath(): void {
    // A command runner does not die: each command is its own process.
  }

  close(): Promise<void> {
    for (const a of this.running.values()) a.abort();
    return Promise.resolve();
  }
}
