import type { Pool } from 'pg';
import { serviceFromDb, serviceParams, type ServiceDbRow } from '../service-rows.js';
import type { ServiceRecord, ServiceStore } from '../store.js';
import { pgServiceQueries as q } from './queries.js';

/** Deployed services on PostgreSQL: a deploy is one transaction. */
export class PostgresServiceStore implements ServiceStore {
  constructor(private readonly pool: Pool) {}

  async save(records: ServiceRecord[]): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      for (const r of records) {
        await client.query({ name: 'svc_upsert', text: q.upsertService, values: serviceParams(r) });
        await client.query({ name: 'svc_drop_calls', text: q.dropCalls, values: [r.name] });
        await client.query({ name: 'svc_calls', text: q.insertCalls, values: [r.name, r.calls] });
      }
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  async list(): Promise<ServiceRecord[]> {
    const { rows } = await this.pool.query<ServiceDbRow>({ name: 'svc_list', text: q.listServices });
    return rows.map(serviceFromDb);
  }

  async callersOf(name: string): Promise<{ name: string; depth: number }[]> {
    const { rows } = await this.pool.query<{ name: string; depth: number }>({
      name: 'svc_callers',
      text: q.callersOf,
      values: [name],
    });
    return rows;
  }
}
