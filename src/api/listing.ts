import { CosmosError } from '../errors.js';
import type { Store } from '../store/store.js';
import type { Execution, TraceEvent } from '../workflow/execution.js';
import { spansOf, type Span } from '../observability/spans.js';
import { traceTree } from '../observability/trace-tree.js';
import { executionSummary } from './views.js';

/** Most rows one page of executions may hold. */
export const MAX_PAGE = 200;

/** An opaque page cursor: the (createdAt, id) of the last row of the previous page. */
export function encodeCursor(createdAt: number, id: string): string {
  return Buffer.from(JSON.stringify([createdAt, id])).toString('base64url');
}

export function decodeCursor(cursor: string): { createdAt: number; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as [unknown, unknown];
    if (typeof createdAt === 'number' && typeof id === 'string') return { createdAt, id };
  } catch {
    // falls through to the error below
  }
  throw new CosmosError('invalid_argument', 'cursor is not one this server handed out', { cursor });
}

export interface PageRequest {
  service?: string;
  status?: string;
  q?: string;
  limit: number;
  cursor?: string;
}

/** One page of executions, newest first, and the cursor of the next (the API and the CLI alike). */
export async function executionPage(
  store: Store,
  f: PageRequest,
): Promise<{ items: Record<string, unknown>[]; nextCursor: string | null }> {
  const rows = await store.workflow.listExecutions({
    limit: f.limit + 1,
    ...(f.service && { service: f.service }),
    ...(f.status && { status: f.status }),
    ...(f.q && { q: f.q }),
    ...(f.cursor && { before: decodeCursor(f.cursor) }),
  });
  const page = rows.slice(0, f.limit);
  const last = page.at(-1);
  return {
    items: page.map((r) => executionSummary(JSON.parse(r.doc) as Execution)),
    nextCursor: rows.length > f.limit && last ? encodeCursor(last.createdAt, last.id) : null,
  };
}

/** An execution's trace: its own events, its direct children, and the spans of its whole tree. */
export async function traceAndChildren(
  store: Store,
  root: Execution,
): Promise<{ events: TraceEvent[]; children: Record<string, unknown>[]; spans: Span[]; truncated: boolean }> {
  const t = await traceTree(store, root, MAX_PAGE);
  return {
    events: t.executions[0]!.events,
    // Children newest first, as the executions list orders them.
    children: [...t.children].reverse().map(executionSummary),
    spans: spansOf(t.executions),
    truncated: t.truncated,
  };
}
