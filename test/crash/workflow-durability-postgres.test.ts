import { describe, it } from 'vitest';
import { pgUrl, postgresKind } from '../support/stores.js';
import { durabilitySuite } from './workflow-durability.js';

// Without PostgreSQL configured (a user's machine), global setup says loudly that these are skipped.
if (pgUrl) durabilitySuite(postgresKind);
else
  describe.skip('workflow durability on postgres (no COSMOS_TEST_DATABASE_URL)', () =>
    it('skipped', () => undefined));
