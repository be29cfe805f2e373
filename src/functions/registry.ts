import { InvalidArgumentError } from '../errors.js';
import type { FunctionDefinition } from './define.js';
import type { FunctionRef } from './protocol.js';

export interface RegisteredFunction {
  name: string;
  version: string;
  def: FunctionDefinition;
  /** The bundle the runners load. */
  ref: FunctionRef;
  /** The queue its invocations travel on. */
  queue: string;
  registeredAt: number;
}

const NAME = /^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$/i;

/**
 * Every registered version of every function. Registering a new version makes it current for new
 * invocations; older versions stay runnable, so invocations queued before a release run the code they were
 * made for, and one function can be released without its service.
 */
export class FunctionRegistry {
  private readonly byName = new Map<string, { current: string; versions: Map<string, RegisteredFunction> }>();

  add(
    name: string,
    version: string,
    def: FunctionDefinition,
    ref: FunctionRef,
    now = Date.now(),
  ): RegisteredFunction {
    if (!NAME.test(name))
      throw new InvalidArgumentError(
        `function name "${name}" must be letters, digits, "-" or "_", in dot-separated parts (e.g. encoder.encode)`,
      );
    let entry = this.byName.get(name);
    if (!entry) {
      entry = { current: version, versions: new Map() };
      this.byName.set(name, entry);
    }
    const existing = entry.versions.get(version);
    const reg = existing ?? { name, version, def, ref, queue: `fn.${name}`, registeredAt: now };
    entry.versions.set(version, reg);
    entry.current = version;
    return reg;
  }

  get(name: string, version?: string): RegisteredFunction | undefined {
    const entry = this.byName.get(name);
    return entry?.versions.get(version ?? entry.current);
  }

  versions(name: string): string[] {
    return [...(this.byName.get(name)?.versions.keys() ?? [])];
  }

  list(): RegisteredFunction[] {
    return [...this.byName.values()].map((e) => e.versions.get(e.current)!);
  }
}
