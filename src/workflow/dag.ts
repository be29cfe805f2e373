import { InvalidArgumentError } from '../errors.js';
import { rule, sourceOf, type Rule, type Workflow } from './define.js';

/** What a stage sees when it builds its request: the execution's input and the outputs of finished stages. */
export interface DagView<I = unknown> {
  input: I;
  outputs: Record<string, unknown>;
}

interface StageBase {
  /** Stages that must be done first; their outputs are in `view.outputs` (a map stage's as an array). */
  after?: string[];
  /** A function to invoke, or `service.operation` to call as a child execution. Exactly one of the two. */
  fn?: string;
  call?: string;
  priority?: number;
  pool?: string;
}

export interface SingleStage<I> extends StageBase {
  /** Default: the execution's input for a stage without dependencies, else the outputs so far. */
  input?: (view: DagView<I>) => unknown;
  /** Documents that this stage gathers a map stage's outputs (it must depend on one). */
  reduce?: boolean;
}

export interface MapStage<I> extends StageBase {
  /** Fans out: one request per item, all in parallel; the stage's output is their outputs in item order. */
  map: (view: DagView<I>) => unknown[];
  /** The request for one item; default: the item itself. */
  item?: (item: unknown, index: number, view: DagView<I>) => unknown;
}

export type Stage<I> = SingleStage<I> | MapStage<I>;

export interface DagOptions<I> {
  stages: Record<string, Stage<I>>;
  /** The execution's output once every stage is done; default: the outputs of the stages nothing depends on. */
  output?: (view: DagView<I>) => unknown;
  version?: string;
}

/** The engine's state of a DAG execution: plain data, visible in the trace like any rule state. */
export interface DagState<I = unknown> {
  input: I;
  outputs: Record<string, unknown>;
  running: Record<string, { pending: number; results: unknown[] }>;
  done: boolean;
}

const isMap = <I>(s: Stage<I>): s is MapStage<I> => 'map' in s && typeof s.map === 'function';

/**
 * DAG mode (SPEC §4): stages with dependencies, `map` fan-out and reduce, compiled to one rule per stage, so a
 * DAG runs on the same engine, commits the same way and leaves the same trace as hand-written rules.
 */
export function dag<I>(options: DagOptions<I>): Workflow<I, DagState<I>> {
  const names = Object.keys(options.stages);
  if (names.length === 0) throw new InvalidArgumentError('dag() needs at least one stage');
  for (const [name, s] of Object.entries(options.stages)) {
    if ((s.fn === undefined) === (s.call === undefined))
      throw new InvalidArgumentError(`stage "${name}" needs exactly one of fn or call`);
    if (s.call !== undefined && !/^[^.]+\.[^.]+$/.test(s.call))
      throw new InvalidArgumentError(`stage "${name}": call must be "service.operation", got "${s.call}"`);
    for (const d of s.after ?? [])
      if (!(d in options.stages))
        throw new InvalidArgumentError(`stage "${name}" depends on unknown stage "${d}"`);
    if ('reduce' in s && s.reduce && !(s.after ?? []).some((d) => isMap(options.stages[d]!)))
      throw new InvalidArgumentError(`stage "${name}" is a reduce but depends on no map stage`);
  }
  const cycle = findCycle(options.stages);
  if (cycle) throw new InvalidArgumentError(`stages depend on each other in a cycle: ${cycle.join(' → ')}`);
  const depended = new Set(Object.values(options.stages).flatMap((s) => s.after ?? []));
  const sinks = names.filter((n) => !depended.has(n));

  const rules: Rule<DagState<I>, I>[] = Object.entries(options.stages).map(([name, s]) =>
    rule<DagState<I>, I>(`stage:${name}`, {
      match: (st) =>
        !(name in st.outputs) && !(name in st.running) && (s.after ?? []).every((d) => d in st.outputs),
      action: (st, ctx) => {
        const view: DagView<I> = { input: st.input as I, outputs: st.outputs };
        const send = (input: unknown, key?: string): void => {
          const o = {
            ...(key !== undefined && { key }),
            ...(s.priority !== undefined && { priority: s.priority }),
            ...(s.pool !== undefined && { pool: s.pool }),
          };
          if (s.fn !== undefined) ctx.invoke(s.fn, input, o);
          else {
            const [service, operation] = s.call!.split('.') as [string, string];
            ctx.call(service, operation, input, o);
          }
        };
        if (isMap(s)) {
          const items = s.map(view);
          if (!Array.isArray(items)) throw new Error(`map of stage "${name}" did not return an array`);
          if (items.length === 0) {
            st.outputs[name] = [];
            return;
          }
          st.running[name] = { pending: items.length, results: new Array<unknown>(items.length).fill(null) };
          items.forEach((item, i) => send(s.item ? s.item(item, i, view) : item, String(i)));
        } else {
          const input = s.input ? s.input(view) : (s.after ?? []).length === 0 ? view.input : view.outputs;
          st.running[name] = { pending: 1, results: [] };
          send(input);
        }
      },
      reaction: (st, r) => {
        const run = st.running[name]!;
        if (isMap(s)) run.results[Number(r.key)] = r.output;
        run.pending--;
        if (run.pending > 0) return;
        st.outputs[name] = isMap(s) ? run.results : r.output;
        delete st.running[name];
      },
    }),
  );
  rules.push(
    rule<DagState<I>, I>('dag:complete', {
      match: (st) => !st.done && names.every((n) => n in st.outputs),
      action: (st, ctx) => {
        st.done = true;
        const view: DagView<I> = { input: st.input as I, outputs: st.outputs };
        ctx.complete(
          options.output
            ? options.output(view)
            : sinks.length === 1
              ? st.outputs[sinks[0]!]
              : Object.fromEntries(sinks.map((n) => [n, st.outputs[n]])),
        );
      },
    }),
  );
  return {
    kind: 'dag',
    initial: (input: I) => ({ input, outputs: {}, running: {}, done: false }),
    rules,
    signals: {},
    alwaysOn: false,
    reevaluateOnUpgrade: false,
    version: options.version,
    source: sourceOf(options),
  };
}

function findCycle<I>(stages: Record<string, Stage<I>>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (n: string): string[] | undefined => {
    if (state.get(n) === 'done') return undefined;
    if (state.get(n) === 'open') return [...path.slice(path.indexOf(n)), n];
    state.set(n, 'open');
    path.push(n);
    for (const d of stages[n]!.after ?? []) {
      const c = visit(d);
      if (c) return c;
    }
    path.pop();
    state.set(n, 'done');
    return undefined;
  };
  for (const n of Object.keys(stages)) {
    const c = visit(n);
    if (c) return c;
  }
  return undefined;
}
