import type { z } from 'zod';
import { CosmosError } from '../errors.js';
import type { FunctionRuntime } from '../functions/runtime.js';
import type { Workflow, WorkflowFailure } from '../workflow/define.js';
import type { CallPolicy, WorkflowEngine } from '../workflow/engine.js';
import type { ServiceRecord, ServiceStore } from '../store/store.js';
import { jsonSchemaOf } from './openapi.js';
import { callCycles, type OperationSpec, type ServiceDefinition } from './service.js';

/** A service as deployed on this node: its definition and the module its functions are bundled from. */
export interface DeployedService {
  definition: ServiceDefinition;
  /** The service's module file (`services/<name>/service.ts`). */
  module: string;
}

/** One failing path of a validation error, as the API answers it. */
export interface ValidationIssue {
  path: string;
  message: string;
  code: string;
}

/** The engine's name of an operation's workflow: one per operation, `service.operation`. */
export function workflowName(service: string, operation: string): string {
  return `${service}.${operation}`;
}

/**
 * The services this node serves: the one place that knows which operations exist, what their inputs are,
 * who owns them and whom they may call. Deploying registers their functions with the runtime and their
 * workflows with the engine (functions named `service.fn`, workflows `service.operation`).
 */
export class ServiceCatalog {
  private readonly services = new Map<string, DeployedService>();

  constructor(
    private readonly engine: WorkflowEngine,
    private readonly runtime: FunctionRuntime,
    /** Where deployed services are recorded as data (owners, calls, versions), for every node to query. */
    private readonly records?: ServiceStore,
  ) {}

  /** Deploys a set of services (all, or none when one is invalid); a service deployed again gets new versions. */
  async deploy(services: DeployedService[]): Promise<void> {
    const names = new Set<string>();
    for (const s of services) {
      if (names.has(s.definition.name))
        throw new CosmosError('service_invalid', `two services are named "${s.definition.name}"`, {
          service: s.definition.name,
        });
      names.add(s.definition.name);
    }
    const all = new Map(this.services);
    for (const s of services) all.set(s.definition.name, s);
    const defs = [...all.values()].map((s) => s.definition);
    const problems: string[] = [];
    for (const d of defs)
      for (const c of d.calls)
        if (!all.has(c)) problems.push(`service ${d.name} calls "${c}", which is not deployed`);
    for (const cycle of callCycles(defs)) problems.push(`services call each other in a cycle: ${cycle}`);
    if (problems.length > 0) throw new CosmosError('service_invalid', problems.join('; '), { problems });
    for (const s of services) {
      const d = s.definition;
      for (const [pool, c] of Object.entries(d.pools)) if (c.warm) this.runtime.keepWarm(pool, c.warm);
      for (const [name, def] of Object.entries(d.functions))
        await this.runtime.register(`${d.name}.${name}`, def, { module: s.module });
      for (const [op, spec] of Object.entries(d.operations))
        await this.engine.register(workflowName(d.name, op), d.workflows[spec.workflow] as Workflow, {
          functions: d.name,
        });
      this.services.set(d.name, s);
    }
    await this.records?.save(services.map((s) => this.record(s.definition)));
  }

  /** A deployed service as the store keeps it: the description the API and the UI show. */
  record(d: ServiceDefinition): ServiceRecord {
    const versions = this.versions(d.name);
    return {
      name: d.name,
      owner: { ...d.owner },
      ...(d.description !== undefined && { description: d.description }),
      calls: [...d.calls].sort(),
      secrets: [...d.secrets],
      definition: {
        operations: Object.fromEntries(
          Object.entries(d.operations).map(([op, o]) => [
            op,
            {
              workflow: o.workflow,
              version: versions.operations[op] ?? null,
              description: o.description ?? null,
              priority: o.priority ?? null,
              input: jsonSchemaOf(o.input, 'input'),
              output: jsonSchemaOf(o.output, 'output'),
            },
          ]),
        ),
        functions: Object.fromEntries(
          Object.entries(d.functions).map(([name, f]) => [
            name,
            {
              version: versions.functions[name] ?? null,
              pool: f.options.pool,
              runtime: f.options.runtime,
              shape: f.options.shape,
              timeoutMs: f.options.timeoutMs,
              attempts: f.options.attempts,
            },
          ]),
        ),
      },
      deployedAt: Date.now(),
    };
  }

  /** The versions now deployed: of each operation's workflow and of each function. */
  versions(service: string): { operations: Record<string, string>; functions: Record<string, string> } {
    const d = this.get(service);
    const operations: Record<string, string> = {};
    const functions: Record<string, string> = {};
    for (const op of Object.keys(d?.operations ?? {})) {
      const v = this.engine.registry.get(workflowName(service, op))?.version;
      if (v) operations[op] = v;
    }
    for (const f of Object.keys(d?.functions ?? {})) {
      const v = this.runtime.registry.get(`${service}.${f}`)?.version;
      if (v) functions[f] = v;
    }
    return { operations, functions };
  }

  list(): ServiceDefinition[] {
    return [...this.services.values()].map((s) => s.definition);
  }

  get(service: string): ServiceDefinition | undefined {
    return this.services.get(service)?.definition;
  }

  /** The operation, or the 404 that names what is missing. */
  operation(service: string, operation: string): OperationSpec {
    const d = this.get(service);
    if (!d)
      throw new CosmosError('service_not_found', `no service "${service}"`, {
        service,
        services: [...this.services.keys()],
      });
    const op = Object.hasOwn(d.operations, operation) ? d.operations[operation] : undefined;
    if (!op)
      throw new CosmosError('operation_not_found', `service ${service} has no operation "${operation}"`, {
        service,
        operation,
        operations: Object.keys(d.operations),
      });
    return op;
  }

  /** The input as the operation's schema parses it, or a `validation_failed` error listing every path. */
  validate(service: string, operation: string, input: unknown): unknown {
    const op = this.operation(service, operation);
    const r = op.input.safeParse(input);
    if (r.success) return r.data;
    const issues = toIssues(r.error.issues);
    throw new CosmosError(
      'validation_failed',
      `input of ${service}.${operation} is invalid: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      { issues },
    );
  }

  /**
   * The priority of a new execution: the operation's default offset, or the requested one within its range,
   * added to the submission time (lower runs first).
   */
  priority(service: string, operation: string, requested: number | undefined, now: number): number {
    const range = this.operation(service, operation).priority ?? {};
    const offset = requested ?? range.default ?? 0;
    const min = range.min ?? (requested === undefined ? -Infinity : 0);
    const max = range.max ?? (requested === undefined ? Infinity : 0);
    if (offset < min || offset > max)
      throw new CosmosError(
        'priority_out_of_range',
        `${service}.${operation} takes a priority offset in [${min}, ${max}] ms, not ${offset}`,
        { min, max, requested: offset },
      );
    return now + offset;
  }

  /** The engine's call policy: a workflow may call only services its own service lists in `calls`. */
  readonly callPolicy: CallPolicy = (from, service, operation, input) => {
    const caller = from.workflow.slice(0, from.workflow.indexOf('.'));
    const d = this.get(caller);
    const refuse = (code: string, message: string, details?: Record<string, unknown>) => ({
      error: { code, message, ...(details && { details }) } satisfies WorkflowFailure,
    });
    if (d && !d.calls.includes(service))
      return refuse(
        'call_not_allowed',
        `service ${caller} may not call ${service}: it is not in ${caller}'s calls (${d.calls.join(', ') || 'none'})`,
        { caller, service },
      );
    try {
      return { workflow: workflowName(service, operation), input: this.validate(service, operation, input) };
    } catch (e) {
      if (e instanceof CosmosError) return refuse(e.code, e.message, e.details);
      throw e;
    }
  };
}

function toIssues(issues: z.core.$ZodIssue[]): ValidationIssue[] {
  return issues.map((i) => ({
    path: i.path.length === 0 ? '(input)' : i.path.map(String).join('.'),
    message: i.message,
    code: i.code,
  }));
}
