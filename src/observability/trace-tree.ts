import type { Store } from '../store/store.js';
import type { Execution, TraceEvent } from '../workflow/execution.js';
import type { TracedExecution } from './spans.js';

/** Most executions one trace gathers (the request's own and its descendants). */
export const MAX_TRACE_EXECUTIONS = 500;

/**
 * The executions of one request: the root and every execution below it, each with its trace events, gathered
 * breadth first (one trace per request across services, SPEC §8). `children` are the root's own, oldest first.
 */
export async function traceTree(
  store: Store,
  root: Execution,
  childrenPerExecution: number,
): Promise<{ executions: TracedExecution[]; children: Execution[]; truncated: boolean }> {
  const executions: TracedExecution[] = [];
  let children: Execution[] = [];
  const todo: Execution[] = [root];
  while (todo.length > 0 && executions.length < MAX_TRACE_EXECUTIONS) {
    const level = todo.splice(0, MAX_TRACE_EXECUTIONS - executions.length);
    const found = await Promise.all(
      level.map(async (doc) => {
        const [rows, kids] = await Promise.all([
          store.workflow.trace(doc.id),
          store.workflow.listExecutions({ parentId: doc.id, limit: childrenPerExecution }),
        ]);
        return {
          doc,
          events: rows.flatMap((r) => JSON.parse(r.events) as TraceEvent[]),
          kids: kids.map((r) => JSON.parse(r.doc) as Execution).reverse(),
        };
      }),
    );
    for (const f of found) {
      if (f.doc === root) children = f.kids;
      executions.push({ doc: f.doc, events: f.events });
      todo.push(...f.kids);
    }
  }
  return { executions, children, truncated: todo.length > 0 };
}
