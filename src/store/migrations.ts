import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CosmosError, SchemaTooNewError } from '../errors.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export interface AppliedMigration {
  version: number;
  checksum: string;
}

const FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/** Reads `migrations/<dialect>/NNNN_name.sql`, in version order. Shipped beside the compiled code. */
export function loadMigrations(dialect: 'sqlite' | 'postgres'): Migration[] {
  const dir = fileURLToPath(new URL(`./migrations/${dialect}/`, import.meta.url));
  const migrations = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .map((file) => {
      const m = FILE.exec(file);
      if (!m) throw new CosmosError('migration_failed', `migration file name "${file}" is not NNNN_name.sql`);
      const sql = readFileSync(`${dir}${file}`, 'utf8');
      return {
        version: Number(m[1]),
        name: m[2]!,
        sql,
        checksum: createHash('sha256').update(sql).digest('hex'),
      };
    })
    .sort((a, b) => a.version - b.version);
  migrations.forEach((m, i) => {
    if (m.version !== i + 1)
      throw new CosmosError('migration_failed', `${dialect} migrations must be numbered 1..n without gaps`);
  });
  return migrations;
}

/**
 * Decides what to apply. Refuses a database that is ahead of this code (an older Cosmos must not write
 * to a newer schema) and one whose applied migrations were edited after the fact.
 */
export function planMigrations(applied: AppliedMigration[], available: Migration[]): Migration[] {
  const known = available.length === 0 ? 0 : available[available.length - 1]!.version;
  const newest = applied.reduce((max, a) => Math.max(max, a.version), 0);
  if (newest > known) throw new SchemaTooNewError(newest, known);
  const byVersion = new Map(available.map((m) => [m.version, m]));
  for (const a of applied) {
    const m = byVersion.get(a.version);
    if (m && m.checksum !== a.checksum)
      throw new CosmosError(
        'migration_checksum_mismatch',
        `migration ${a.version} (${m.name}) differs from the one applied to this database; migrations are immutable once released`,
        { version: a.version },
      );
  }
  const done = new Set(applied.map((a) => a.version));
  return available.filter((m) => !done.has(m.version));
}
