import { describe, expect, it } from 'vitest';
import type { CosmosError } from '../errors.js';
import { loadMigrations, planMigrations, type Migration } from './migrations.js';

const m = (version: number, checksum = `c${version}`): Migration => ({
  version,
  name: `m${version}`,
  sql: '',
  checksum,
});

describe('migrations', () => {
  it('ships numbered migrations for both dialects', () => {
    for (const dialect of ['sqlite', 'postgres'] as const) {
      const all = loadMigrations(dialect);
      expect(all.length).toBeGreaterThan(0);
      expect(all.map((x) => x.version)).toEqual(all.map((_, i) => i + 1));
      expect(all[0]!.checksum).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it('plans only what is not applied yet', () => {
    expect(planMigrations([], [m(1), m(2)]).map((x) => x.version)).toEqual([1, 2]);
    expect(planMigrations([{ version: 1, checksum: 'c1' }], [m(1), m(2)]).map((x) => x.version)).toEqual([2]);
  });

  it('refuses a database newer than the code', () => {
    const err = (() => {
      try {
        planMigrations([{ version: 3, checksum: 'c3' }], [m(1), m(2)]);
      } catch (e) {
        return e as CosmosError;
      }
    })();
    expect(err?.code).toBe('schema_too_new');
    expect(err?.details).toEqual({ found: 3, known: 2 });
  });

  it('refuses an applied migration that was edited afterwards', () => {
    expect(() => planMigrations([{ version: 1, checksum: 'other' }], [m(1)])).toThrow(/immutable/);
  });
});
