import type { ServiceRecord } from './store.js';

/** A `services` row as both dialects return it, with the declared calls gathered. */
export interface ServiceDbRow {
  name: string;
  owner_team: string;
  owner_contact: string | null;
  description: string | null;
  secrets: string;
  definition: string;
  deployed_at: number | string;
  calls: string | null;
}

export function serviceFromDb(r: ServiceDbRow): ServiceRecord {
  return {
    name: r.name,
    owner: { team: r.owner_team, ...(r.owner_contact !== null && { contact: r.owner_contact }) },
    ...(r.description !== null && { description: r.description }),
    calls: r.calls ? (JSON.parse(r.calls) as string[]).filter((c) => c !== null).sort() : [],
    secrets: JSON.parse(r.secrets) as string[],
    definition: JSON.parse(r.definition) as Record<string, unknown>,
    deployedAt: Number(r.deployed_at),
  };
}

/** The row's columns for an insert. */
export function serviceParams(s: ServiceRecord): unknown[] {
  return [
    s.name,
    s.owner.team,
    s.owner.contact ?? null,
    s.description ?? null,
    JSON.stringify(s.secrets),
    JSON.stringify(s.definition),
    s.deployedAt,
  ];
}
