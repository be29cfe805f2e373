import { readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { CosmosError } from '../errors.js';
import { StatusLine } from './format.js';
import { HttpPlatform, type ExecutionView } from './platform.js';

const FINISHED = new Set(['succeeded', 'failed', 'canceled']);

/** `--input` as JSON text, or `@file` holding it. */
export function parseInput(value: string): unknown {
  const text = value.startsWith('@') ? readFileSync(value.slice(1), 'utf8') : value;
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new InvalidArgumentError(`--input is not JSON: ${(e as Error).message}`);
  }
}

function integer(value: string): number {
  if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError('an integer (milliseconds)');
  return Number(value);
}

interface CallOptions {
  input: unknown;
  wait?: boolean;
  priority?: number;
  idempotencyKey?: string;
  url: string;
  json?: boolean;
  timeout: number;
}

/** Polls until the execution finishes, drawing its progress on the terminal. */
async function follow(api: HttpPlatform, id: string, timeoutS: number): Promise<ExecutionView> {
  const status = new StatusLine();
  const t0 = Date.now();
  const spin = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
  try {
    for (let i = 0; ; i++) {
      const x = await api.get(id);
      if (FINISHED.has(x.status)) return x;
      if (Date.now() - t0 > timeoutS * 1000)
        throw new CosmosError('execution_wait_timeout', `${id} still running after ${timeoutS} s`, { id });
      const out = (x.outstanding as { kind: string; target: string }[] | undefined) ?? [];
      const targets = [...new Set(out.map((o) => o.target))].join(', ');
      status.update(
        `${spin[i % spin.length]} ${id}  ${x.status}  ${((Date.now() - t0) / 1000).toFixed(1)} s  ${out.length} outstanding${targets ? ` (${targets})` : ''}`,
      );
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    status.clear();
  }
}

/** `cosmos call <service> <operation> --input …`: submits through the API, and with --wait prints the output. */
export function callCommand(program: Command, defaultUrl: string): void {
  program
    .command('call <service> <operation>')
    .description('start an execution of an operation on a running server; --wait follows it to the end')
    .requiredOption('--input <json|@file>', 'the input, as JSON or @file', parseInput)
    .option('--wait', 'follow the execution live and print its output')
    .option('--timeout <seconds>', 'longest --wait', (v) => integer(v), 600)
    .option('--priority <ms>', 'priority offset from now (lower runs first)', integer)
    .option('--idempotency-key <key>', 'the same key returns the same execution')
    .option('--url <server>', 'the Cosmos server', defaultUrl)
    .option('--json', 'print JSON')
    .action(async (service: string, operation: string, o: CallOptions) => {
      const api = new HttpPlatform(o.url);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (o.priority !== undefined) headers['cosmos-priority'] = String(o.priority);
      if (o.idempotencyKey !== undefined) headers['idempotency-key'] = o.idempotencyKey;
      const accepted = await api.request<{
        executionId: string;
        status: string;
        links: Record<string, string>;
      }>(`/v1/services/${encodeURIComponent(service)}/${encodeURIComponent(operation)}`, {
        method: 'POST',
        headers,
        body: JSON.stringify(o.input),
      });
      if (!o.wait) {
        if (o.json) process.stdout.write(`${JSON.stringify(accepted, null, 2)}\n`);
        else
          process.stdout.write(
            `${accepted.executionId}  ${accepted.status}\n  follow: cosmos trace ${accepted.executionId} --url ${api.base}\n`,
          );
        return;
      }
      const x = await follow(api, accepted.executionId, o.timeout);
      if (o.json) process.stdout.write(`${JSON.stringify(x, null, 2)}\n`);
      else if (x.status === 'succeeded')
        process.stdout.write(`${JSON.stringify(x.output ?? null, null, 2)}\n`);
      else process.stderr.write(`${x.executionId} ${x.status}: ${JSON.stringify(x.error ?? null)}\n`);
      process.stderr.write(`trace: ${api.base}/v1/executions/${x.executionId}/trace\n`);
      process.stderr.write(`ui: ${api.base}/ui/executions/${encodeURIComponent(x.executionId)}\n`);
      if (x.status !== 'succeeded') process.exitCode = 3;
    });
}
