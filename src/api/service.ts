import type { z } from 'zod';
import { CosmosError } from '../errors.js';
import { isFunctionDefinition, type FunctionDefinition } from '../functions/define.js';
import type { Workflow } from '../workflow/define.js';

/** Who answers for a service: what the platform shows on its pages and maps vulnerabilities to (SPEC §11). */
export interface ServiceOwner {
  team: string;
  contact?: string;
}

/**
 * The priority an operation's executions get, as an offset in milliseconds from the submission time (lower
 * runs first, SPEC §5): `default` when the request names none, and the range a request may ask for.
 */
export interface PriorityRange {
  default?: number;
  min?: number;
  max?: number;
}

export interface OperationSpec<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  description?: string;
  input: I;
  output: O;
  /** The workflow (a key of the service's `workflows`) an execution of this operation runs. */
  workflow: string;
  priority?: PriorityRange;
}

export interface ServiceSpec {
  name: string;
  owner: ServiceOwner;
  description?: string;
  operations: Record<string, OperationSpec>;
  /** Made with rules() or dag(); each is typed by its own input and state. */
  workflows: Record<string, AnyWorkflow>;
  functions?: Record<string, FunctionDefinition>;
  /** Services whose operations this one's workflows may call (`ctx.call`); any other call is refused. */
  calls?: string[];
  /** Names of the secrets its functions read (the security layer provides them). */
  secrets?: string[];
  /**
   * Capacity its functions' pools keep: `warm` workers started before any invocation arrives, so a
   * latency-sensitive function never waits for a worker to start (applied when the node starts).
   */
  pools?: Record<string, { warm?: number }>;
}

/** Any workflow, whatever its input and state types (a record of workflows holds many). */
export type AnyWorkflow = Pick<Workflow, 'kind' | 'source' | 'version'>;

/** A checked service definition: the default export of `services/<name>/service.ts`. */
export interface ServiceDefinition extends Required<Omit<ServiceSpec, 'description'>> {
  readonly kind: 'cosmos.service';
  description: string | undefined;
}

const NAME = /^[a-z][a-z0-9-]{0,62}$/;
const MEMBER = /^[a-zA-Z][a-zA-Z0-9_-]{0,62}$/;

/**
 * Defines a service. Everything that can be checked without running it is checked here, and every problem
 * is reported at once (`service_invalid`, with `details.problems`).
 */
export function defineService(spec: ServiceSpec): ServiceDefinition {
  const problems: string[] = [];
  const name = typeof spec?.name === 'string' ? spec.name : '';
  if (!NAME.test(name))
    problems.push(
      `name "${String(spec?.name)}" must be lowercase letters, digits and dashes, starting with a letter`,
    );
  if (!spec?.owner || typeof spec.owner.team !== 'string' || spec.owner.team === '')
    problems.push('owner.team is required: every service has a team that answers for it');
  const operations = spec?.operations ?? {};
  const workflows = spec?.workflows ?? {};
  const functions = spec?.functions ?? {};
  const calls = spec?.calls ?? [];
  if (Object.keys(operations).length === 0) problems.push('a service needs at least one operation');
  for (const [op, o] of Object.entries(operations)) {
    if (!MEMBER.test(op)) problems.push(`operation name "${op}" is not a plain identifier`);
    if (!isSchema(o?.input)) problems.push(`operation ${op}: input must be a zod schema`);
    if (!isSchema(o?.output)) problems.push(`operation ${op}: output must be a zod schema`);
    if (typeof o?.workflow !== 'string' || !(o.workflow in workflows))
      problems.push(
        `operation ${op}: workflow "${String(o?.workflow)}" is not one of this service's workflows (${Object.keys(workflows).join(', ') || 'none'})`,
      );
    const p = o?.priority;
    if (p) {
      for (const k of ['default', 'min', 'max'] as const)
        if (p[k] !== undefined && !Number.isInteger(p[k]))
          problems.push(`operation ${op}: priority.${k} must be an integer (milliseconds)`);
      if (p.min !== undefined && p.max !== undefined && p.min > p.max)
        problems.push(`operation ${op}: priority.min is above priority.max`);
      const d = p.default ?? 0;
      if ((p.min !== undefined && d < p.min) || (p.max !== undefined && d > p.max))
        problems.push(`operation ${op}: priority.default ${d} is outside [min, max]`);
    }
  }
  for (const [w, wf] of Object.entries(workflows)) {
    if (!MEMBER.test(w)) problems.push(`workflow name "${w}" is not a plain identifier`);
    if (!wf || (wf.kind !== 'rules' && wf.kind !== 'dag') || typeof wf.source !== 'string')
      problems.push(`workflow ${w}: not a workflow (make it with rules() or dag())`);
    else
      for (const f of invokedFunctions(wf))
        if (!(f in functions))
          problems.push(
            `workflow ${w}: invokes function "${f}", which is not one of this service's functions (${Object.keys(functions).join(', ') || 'none'})`,
          );
  }
  for (const [f, def] of Object.entries(functions)) {
    if (!MEMBER.test(f)) problems.push(`function name "${f}" is not a plain identifier`);
    if (!isFunctionDefinition(def))
      problems.push(`function ${f}: not a function definition (make it with fn())`);
  }
  if (!Array.isArray(calls) || calls.some((c) => typeof c !== 'string' || !NAME.test(c)))
    problems.push('calls must be a list of service names');
  else if (calls.includes(name)) problems.push('a service does not list itself in calls');
  const secrets = spec?.secrets ?? [];
  if (!Array.isArray(secrets) || secrets.some((s) => typeof s !== 'string' || !/^[A-Z][A-Z0-9_]*$/.test(s)))
    problems.push('secrets must be a list of UPPER_SNAKE_CASE names');
  const pools = spec?.pools ?? {};
  for (const [p, c] of Object.entries(pools))
    if (!MEMBER.test(p) || (c?.warm !== undefined && (!Number.isInteger(c.warm) || c.warm < 0)))
      problems.push(`pool ${p}: warm must be a non-negative integer`);
  if (problems.length > 0)
    throw new CosmosError('service_invalid', `service "${name || '?'}" is invalid: ${problems.join('; ')}`, {
      service: name,
      problems,
    });
  return {
    kind: 'cosmos.service',
    name,
    owner: { ...spec.owner },
    description: spec.description,
    operations,
    workflows,
    functions,
    calls: [...calls],
    secrets: [...secrets],
    pools: { ...pools },
  };
}

export function isServiceDefinition(v: unknown): v is ServiceDefinition {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'cosmos.service';
}

function isSchema(v: unknown): v is z.ZodType {
  return typeof v === 'object' && v !== null && typeof (v as z.ZodType).safeParse === 'function';
}

/**
 * The functions a workflow invokes by a literal name: DAG stages name theirs; in rules, `invoke('name', …)`
 * calls in the rule's code. A name computed at run time is not seen here and fails at run time instead.
 */
export function invokedFunctions(wf: Pick<Workflow, 'source'>): string[] {
  const found = new Set<string>();
  for (const m of wf.source.matchAll(/\.invoke\(\s*(['"`])([A-Za-z][\w-]*)\1/g)) found.add(m[2]!);
  for (const m of wf.source.matchAll(/\bfn:\s*(['"`])([A-Za-z][\w-]*)\1/g)) found.add(m[2]!);
  return [...found];
}

/**
 * Cycles in the services' `calls` graph: a cycle would let an execution wait on itself through its
 * children. Returns each cycle as a path (`a → b → a`).
 */
export function callCycles(services: Pick<ServiceDefinition, 'name' | 'calls'>[]): string[] {
  const graph = new Map(services.map((s) => [s.name, s.calls]));
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const walk = (n: string, path: string[]): void => {
    if (state.get(n) === 'done') return;
    if (state.get(n) === 'open') {
      cycles.push([...path.slice(path.indexOf(n)), n].join(' → '));
      return;
    }
    state.set(n, 'open');
    for (const m of graph.get(n) ?? []) walk(m, [...path, n]);
    state.set(n, 'done');
  };
  for (const s of services) walk(s.name, []);
  return cycles;
}
