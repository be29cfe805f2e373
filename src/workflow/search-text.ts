import type { Execution } from './execution.js';

/** Longest text one step gives the search index: enough to find an execution by what it was about. */
const SEARCH_TEXT_MAX = 4_000;

/** What the list's search finds an execution by: at its start, its id, workflow and input; at its end, what came out. */
export function searchText(x: Execution, starting: boolean): string | undefined {
  const parts: string[] = [];
  if (starting) parts.push(x.id, x.workflow, JSON.stringify(x.input) ?? '');
  if (x.status !== 'running') {
    if (!starting) parts.push(x.id);
    parts.push(x.status);
    if (x.output !== undefined) parts.push(JSON.stringify(x.output));
    if (x.error) parts.push(x.error.code, x.error.message);
  }
  if (parts.length === 0) return undefined;
  const text = parts.join(' ');
  return text.length > SEARCH_TEXT_MAX ? text.slice(0, SEARCH_TEXT_MAX) : text;
}
