import type { Span } from '../observability/spans.js';
import type { TraceEvent } from '../workflow/execution.js';
import type { ExecutionView } from './platform.js';

/** A field of a view as text: strings as they are, anything else as JSON, nothing as empty. */
export function text(v: unknown): string {
  return typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v);
}

/** Columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

export function executionRows(items: ExecutionView[]): string[] {
  return table(
    ['ID', 'OPERATION', 'STATUS', 'CREATED', 'DURATION'],
    items.map((x) => [
      x.executionId,
      text(x.workflow),
      x.status,
      text(x.createdAt),
      typeof x.durationMs === 'number' ? `${x.durationMs} ms` : '',
    ]),
  );
}

function summary(e: TraceEvent): string {
  const d = e.data ?? {};
  const parts: string[] = [];
  for (const k of ['target', 'key', 'message', 'code', 'name', 'reason'] as const)
    if (d[k] !== undefined) parts.push(`${k}=${typeof d[k] === 'string' ? d[k] : JSON.stringify(d[k])}`);
  return parts.join(' ');
}

/** The trace as a text timeline: time since the start, what happened, which rule, the gist of its data. */
export function timeline(events: TraceEvent[], children: ExecutionView[]): string[] {
  const t0 = events[0]?.at ?? 0;
  const rows = events.map((e) => [`+${String(e.at - t0).padStart(6)} ms`, e.kind, e.rule ?? '', summary(e)]);
  const out = table(['AT', 'EVENT', 'RULE', 'DETAIL'], rows);
  if (children.length > 0) {
    out.push('', 'child executions:');
    for (const c of children) out.push(`  ${c.executionId}  ${text(c.workflow)}  ${c.status}`);
  }
  return out;
}

/** A one-line live status for a terminal (rewritten in place); nothing when output is not a terminal. */
export class StatusLine {
  private shown = false;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {}

  update(text: string): void {
    if (!this.stream.isTTY) return;
    this.stream.write(`\r\x1b[2K${text}`);
    this.shown = true;
  }

  clear(): void {
    if (this.shown) this.stream.write('\r\x1b[2K');
    this.shown = false;
  }
}

/** Spans in tree order: each execution, then its requests by start, a call followed by the child it started. */
function treeOrder(spans: Span[]): { span: Span; depth: number }[] {
  const byParent = new Map<string | null, Span[]>();
  for (const s of spans) {
    if (s.kind === 'rule' || s.kind === 'signal') continue;
    const list = byParent.get(s.parentId) ?? [];
    list.push(s);
    byParent.set(s.parentId, list);
  }
  const ids = new Set(spans.map((s) => s.id));
  const out: { span: Span; depth: number }[] = [];
  const walk = (s: Span, depth: number): void => {
    out.push({ span: s, depth });
    for (const c of (byParent.get(s.id) ?? []).sort((a, b) => a.start - b.start)) walk(c, depth + 1);
  };
  for (const root of spans.filter(
    (s) => s.kind === 'execution' && (s.parentId === null || !ids.has(s.parentId)),
  ))
    walk(root, 0);
  return out;
}

/**
 * The trace as a text Gantt chart: one row per execution, invocation, call and timer, nested as they ran;
 * `░` is waiting (asked, not yet running), `█` running, up to the answer.
 */
export function gantt(spans: Span[], width = 56, now = Date.now()): string[] {
  const rows = treeOrder(spans);
  if (rows.length === 0) return [];
  const t0 = Math.min(...rows.map((r) => r.span.start));
  const t1 = Math.max(...rows.map((r) => r.span.end ?? now), t0 + 1);
  const scale = width / (t1 - t0);
  const col = (t: number): number => Math.min(width, Math.max(0, Math.round((t - t0) * scale)));
  const labels = rows.map(({ span: s, depth }) => {
    const key = typeof s.attributes.key === 'string' ? ` ${s.attributes.key}` : '';
    return `${'  '.repeat(depth)}${s.kind === 'call' ? '→ ' : ''}${s.name}${key}`;
  });
  const labelWidth = Math.min(48, Math.max(...labels.map((l) => l.length)));
  return rows.map(({ span: s }, i) => {
    const end = s.end ?? now;
    const runFrom = typeof s.attributes.startedAt === 'number' ? s.attributes.startedAt : s.start;
    const a = col(s.start);
    const b = Math.max(col(runFrom), a);
    const c = Math.max(col(end), b + 1);
    const bar = `${' '.repeat(a)}${'░'.repeat(b - a)}${'█'.repeat(c - b)}`.padEnd(width + 1);
    const mark =
      s.status === 'error' ? ' ✗' : s.status === 'running' ? ' …' : s.status === 'canceled' ? ' ⊘' : '';
    const label = labels[i]!.length > labelWidth ? `${labels[i]!.slice(0, labelWidth - 1)}…` : labels[i]!;
    return `${label.padEnd(labelWidth)}  ${bar} ${String(end - s.start).padStart(6)} ms${mark}`;
  });
}
