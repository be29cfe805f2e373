import { createHash } from 'node:crypto';
import type { Workflow } from './define.js';

export interface RegisteredWorkflow {
  name: string;
  version: string;
  workflow: Workflow;
  /** The prefix of the functions its rules invoke (a service's name: `invoke('split')` runs `encoder.split`). */
  functions: string | undefined;
}

/** A workflow's version: the one it declares, else a hash of its code, so an edit is a new version. */
export function versionOf(workflow: Pick<Workflow, 'version' | 'source'>): string {
  return workflow.version ?? createHash('sha256').update(workflow.source).digest('hex').slice(0, 12);
}

/**
 * Every version of every workflow this engine knows. Executions name the version they started on and keep
 * running on it (SPEC §4), so old versions stay registered while anything might still run on them.
 */
export class WorkflowRegistry {
  private readonly byName = new Map<
    string,
    { latest: RegisteredWorkflow; versions: Map<string, RegisteredWorkflow> }
  >();

  /** Returns the entry and whether it is new (a re-registration of the same version changes nothing). */
  add(name: string, workflow: Workflow, functions?: string): { entry: RegisteredWorkflow; added: boolean } {
    const version = versionOf(workflow);
    let e = this.byName.get(name);
    const existing = e?.versions.get(version);
    if (existing) return { entry: existing, added: false };
    const entry = { name, version, workflow, functions };
    if (!e) {
      e = { latest: entry, versions: new Map() };
      this.byName.set(name, e);
    }
    e.versions.set(version, entry);
    e.latest = entry;
    return { entry, added: true };
  }

  get(name: string, version?: string): RegisteredWorkflow | undefined {
    const e = this.byName.get(name);
    return version === undefined ? e?.latest : e?.versions.get(version);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }
}
