import type { Draft } from 'immer';
import { InvalidArgumentError } from '../errors.js';

/** A failure delivered to a rule's `error` section: the function's, the child execution's, or the engine's. */
export interface WorkflowFailure {
  /** A stable code: a function failure class (user, timeout…), a child's error code, or an engine code. */
  code: string;
  message: string;
  details?: Record<string, unknown>;
  /** In an `error` section: the function, `service.operation` or timer whose request failed. */
  target?: string;
  /** In an `error` section: the key the action gave that request, if any. */
  key?: string;
}

/** What a rule's `reaction` gets: the answer to one request its action made. */
export interface WorkflowResult<O = unknown> {
  /** `invoke` (a function), `call` (a child execution) or `timer`. */
  kind: 'invoke' | 'call' | 'timer';
  /** The function, `service.operation`, or timer name. */
  target: string;
  /** The key the action gave, if any. */
  key: string | undefined;
  output: O;
  /** Stable per request: the function's invocation id, the child's execution id, or the timer id. */
  id: string;
  /** A function with file I/O: what it wrote, by path under its output folder, as blob references. */
  files?: Record<string, string>;
}

export interface InvokeOptions {
  /** Lower runs first; default: the execution's priority. */
  priority?: number;
  /** Identifies the request within the execution (e.g. a chunk id); comes back with the result. */
  key?: string;
  /** Overrides the function's pool. */
  pool?: string;
}

/** Everything an action, reaction or error section may do besides changing the state. */
export interface RuleContext<I = unknown> {
  readonly executionId: string;
  readonly input: I;
  /** Invokes a function; its result reaches this rule's `reaction` (or `error` once attempts are spent). */
  invoke(fn: string, input: unknown, options?: InvokeOptions): void;
  /** Starts a child execution of another service's operation; its output comes back like a function result. */
  call(service: string, operation: string, input: unknown, options?: InvokeOptions): void;
  /** A durable timer: after `ms` this rule's reaction gets a `timer` result (survives restarts). */
  sleep(ms: number, options?: { key?: string }): void;
  /** Finishes the execution successfully; requests still out are canceled. */
  complete(output?: unknown): void;
  /** Finishes the execution as failed. */
  fail(error: WorkflowFailure | Error | string): void;
  log(message: string, data?: Record<string, unknown>): void;
  /** The engine's clock (virtual in the test harness): use it instead of Date.now() so replays agree. */
  now(): number;
}

export interface RuleSpec<S, I = unknown> {
  match: (state: S) => boolean;
  action: (state: Draft<S>, ctx: RuleContext<I>) => void;
  reaction?: (state: Draft<S>, result: WorkflowResult, ctx: RuleContext<I>) => void;
  /** Called once a request's attempts are spent; without it, the failure fails the execution. */
  error?: (state: Draft<S>, failure: WorkflowFailure, ctx: RuleContext<I>) => void;
}

export interface Rule<S, I = unknown> extends RuleSpec<S, I> {
  name: string;
}

export function rule<S, I = unknown>(name: string, spec: RuleSpec<S, I>): Rule<S, I> {
  if (!name || typeof name !== 'string') throw new InvalidArgumentError('a rule needs a name');
  if (typeof spec.match !== 'function' || typeof spec.action !== 'function')
    throw new InvalidArgumentError(`rule "${name}" needs match and action functions`);
  return { name, ...spec };
}

export type SignalHandler<S, I = unknown> = (state: Draft<S>, payload: unknown, ctx: RuleContext<I>) => void;

export interface RulesOptions<I, S> {
  /** The state an execution starts from. */
  initial: (input: I) => S;
  rules: Rule<S, I>[];
  /** Signals the execution accepts; each changes the state, then the rules are evaluated again. */
  signals?: Record<string, SignalHandler<S, I>>;
  /**
   * Always on: the execution stays open when nothing is left to do, waiting for signals. Otherwise an
   * execution with nothing running and no rule to fire that has not completed fails as stalled.
   */
  alwaysOn?: boolean;
  /** Open executions move to a newer registered version and are evaluated again (default: stay pinned). */
  reevaluateOnUpgrade?: boolean;
  /** Default: derived from the definition's code. */
  version?: string;
}

/** A workflow as the engine runs it: rules over a state (a DAG compiles to this too). */
export interface Workflow<I = unknown, S = unknown> {
  readonly kind: 'rules' | 'dag';
  readonly initial: (input: I) => S;
  readonly rules: readonly Rule<S, I>[];
  readonly signals: Readonly<Record<string, SignalHandler<S, I>>>;
  readonly alwaysOn: boolean;
  readonly reevaluateOnUpgrade: boolean;
  readonly version: string | undefined;
  /** The code the version is derived from when none is given. */
  readonly source: string;
}

export function rules<I, S>(options: RulesOptions<I, S>): Workflow<I, S> {
  if (typeof options.initial !== 'function')
    throw new InvalidArgumentError('rules() needs an initial function');
  if (!Array.isArray(options.rules) || options.rules.length === 0)
    throw new InvalidArgumentError('rules() needs at least one rule');
  const names = new Set<string>();
  for (const r of options.rules) {
    if (names.has(r.name)) throw new InvalidArgumentError(`two rules are named "${r.name}"`);
    names.add(r.name);
  }
  return {
    kind: 'rules',
    initial: options.initial,
    rules: options.rules,
    signals: options.signals ?? {},
    alwaysOn: options.alwaysOn ?? false,
    reevaluateOnUpgrade: options.reevaluateOnUpgrade ?? false,
    version: options.version,
    source: sourceOf(options),
  };
}

/** Every function of a definition as text: what a derived version is a hash of. */
export function sourceOf(value: unknown): string {
  const seen = new Set<unknown>();
  const walk = (v: unknown): string => {
    if (typeof v === 'function') return v.toString();
    if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'undefined';
    if (seen.has(v)) return '<cycle>';
    seen.add(v);
    if (Array.isArray(v)) return `[${v.map(walk).join(',')}]`;
    return `{${Object.entries(v)
      .map(([k, x]) => `${k}:${walk(x)}`)
      .join(',')}}`;
  };
  return walk(value);
}
