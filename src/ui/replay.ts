import type { TraceEvent } from './api.js';

/** One change a step made to the state, as the engine records it (Immer's patch format). */
interface Patch {
  op: 'replace' | 'add' | 'remove';
  path: (string | number)[];
  value?: unknown;
}

type Container = Record<string | number, unknown> | unknown[];

function apply(state: unknown, patch: Patch): unknown {
  if (patch.path.length === 0) return patch.op === 'remove' ? undefined : structuredClone(patch.value);
  let parent = state as Container;
  for (const key of patch.path.slice(0, -1))
    parent = (parent as Record<string | number, unknown>)[key] as Container;
  const key = patch.path.at(-1)!;
  const value = structuredClone(patch.value);
  if (Array.isArray(parent)) {
    const i = key === 'length' ? -1 : Number(key);
    if (key === 'length') parent.length = Number(value);
    else if (patch.op === 'add') parent.splice(i, 0, value);
    else if (patch.op === 'remove') parent.splice(i, 1);
    else parent[i] = value;
  } else if (patch.op === 'remove') delete parent[key];
  else parent[key] = value;
  return state;
}

/** A step that changed the state, and the state after it. */
export interface StateStep {
  event: TraceEvent;
  state: unknown;
}

/**
 * Replays an execution's state step by step: the initial state (on `started`), then each step's patches.
 * Steps recorded with a whole `state` (older traces) reset it.
 */
export function replayStates(events: TraceEvent[]): StateStep[] {
  const out: StateStep[] = [];
  let state: unknown;
  for (const e of events) {
    const data = e.data;
    if (!data) continue;
    if ('state' in data) state = structuredClone(data.state);
    else if (Array.isArray(data.patches)) for (const p of data.patches as Patch[]) state = apply(state, p);
    else continue;
    out.push({ event: e, state: structuredClone(state) });
  }
  return out;
}
