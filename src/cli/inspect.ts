import { InvalidArgumentError, type Command } from 'commander';
import { executionRows, gantt, text, timeline } from './format.js';
import { openPlatform, type ListFilter, type Platform, type TargetOptions } from './platform.js';
import { logLines } from '../api/views.js';

function out(lines: string[] | string): void {
  process.stdout.write(`${Array.isArray(lines) ? lines.join('\n') : lines}\n`);
}

function json(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}

/** Adds the target options every state-reading command takes. */
export function withTarget(cmd: Command): Command {
  return cmd
    .option('--data <dir>', 'folder of the embedded store (default ./.cosmos)')
    .option('--db <url>', 'PostgreSQL connection URL')
    .option('--schema <name>', 'schema holding the platform tables (with --db)')
    .option('--url <server>', 'a running Cosmos server, e.g. http://127.0.0.1:7070');
}

async function using<T>(o: TargetOptions, f: (p: Platform) => Promise<T>): Promise<T> {
  const p = await openPlatform(o);
  try {
    return await f(p);
  } finally {
    await p.close();
  }
}

function limit(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 200) throw new InvalidArgumentError('a limit is 1..200');
  return n;
}

/** `cosmos executions`, `cosmos trace <id>`, `cosmos logs <id>`, `cosmos nodes`. */
export function inspectCommands(program: Command): void {
  withTarget(
    program
      .command('nodes')
      .description('list the nodes of the installation: roles, pools, slots, duties held, last heartbeat')
      .option('--json', 'print JSON'),
  ).action(async (o: TargetOptions & { json?: boolean }) => {
    const nodes = await using(o, (p) => p.nodes());
    if (o.json) return json(nodes);
    if (nodes.length === 0) return out('no nodes have registered yet');
    out(
      nodes.map(
        (n) =>
          `${n.name.padEnd(28)} ${n.status.padEnd(9)} ${n.roles.join(',').padEnd(18)} ${
            n.roles.includes('worker') ? `${n.slots} slots, pools ${n.pools.join(',') || '-'}` : ''
          }${n.duties.length > 0 ? ` duties ${n.duties.join(',')}` : ''} beat ${(n.ageMs / 1000).toFixed(1)}s ago${
            n.url ? ` ${n.url}` : ''
          }`,
      ),
    );
  });

  withTarget(
    program
      .command('executions')
      .description('list executions, newest first (search with --q, page with --cursor)')
      .option('--service <name>', 'only this service')
      .option('--status <status>', 'running, succeeded, failed or canceled')
      .option('--q <text>', 'an execution id, or text in its input, state or output')
      .option('--limit <n>', 'rows per page (1..200)', limit, 20)
      .option('--cursor <cursor>', 'the next page, as printed after the previous one')
      .option('--json', 'print JSON'),
  ).action(async (o: TargetOptions & ListFilter & { json?: boolean }) => {
    const page = await using(o, (p) =>
      p.list({
        ...(o.service && { service: o.service }),
        ...(o.status && { status: o.status }),
        ...(o.q && { q: o.q }),
        ...(o.limit && { limit: o.limit }),
        ...(o.cursor && { cursor: o.cursor }),
      }),
    );
    if (o.json) return json(page);
    if (page.items.length === 0) return out('no executions');
    out(executionRows(page.items));
    if (page.nextCursor) out(`\nmore: --cursor ${page.nextCursor}`);
  });

  withTarget(
    program
      .command('trace <id>')
      .description("an execution's trace as a text timeline")
      .option('--json', 'print JSON'),
  ).action(async (id: string, o: TargetOptions & { json?: boolean }) => {
    const [x, t] = await using(o, (p) => Promise.all([p.get(id), p.trace(id)]));
    if (o.json) return json({ execution: x, ...t });
    out(`${x.executionId}  ${text(x.workflow)}  ${x.status}`);
    const columns = process.stdout.columns ?? 120;
    const chart = gantt(t.spans ?? [], Math.max(20, Math.min(100, columns - 64)));
    if (chart.length > 0) out(['', ...chart, '', 'events:']);
    out(timeline(t.events, t.children));
  });

  withTarget(
    program
      .command('logs <id>')
      .description("an execution's log lines: ctx.log in its rules and what its functions printed")
      .option('--json', 'print JSON'),
  ).action(async (id: string, o: TargetOptions & { json?: boolean }) => {
    const t = await using(o, (p) => p.trace(id));
    const lines = logLines(t.events);
    if (o.json) return json(lines);
    if (lines.length === 0) return out('no log lines');
    for (const l of lines) {
      const where = l.source === 'function' ? `${l.function ?? '?'} ${l.pid ?? ''}` : (l.rule ?? '');
      const extra = l.data ? ` ${JSON.stringify(l.data)}` : '';
      out(`${l.at}  ${l.level.padEnd(5)}  ${where}  ${l.msg}${extra}`);
    }
  });
}
