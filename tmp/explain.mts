import { openStore } from '../src/store/open.js';
import { Queue } from '../src/queue/queue.js';
import { pgQueries } from '../src/store/postgres/queries.js';
const schema = `prof_${process.pid}`;
const store = await openStore({ kind: 'postgres', url: 'postgres://postgres@127.0.0.1:5432/test', schema, poolSize: 1 } as never);
const q = new Queue(store);
for (let i = 0; i < 20; i++) await q.enqueueMany(Array.from({ length: 5000 }, (_, j) => ({ queue: 'b', payload: { n: i * 5000 + j } })));
const pool = (store as any).pool;
await pool.query('VACUUM ANALYZE');
for (let i = 0; i < 20; i++) { const b = await q.dequeue({ queue: 'b', max: 1000 }); await q.completeMany(b.map((m) => m.lease)); }
const c = await pool.connect();
await c.query('BEGIN');
const r = await c.query(`EXPLAIN (ANALYZE, BUFFERS) ${pgQueries.dequeue}`, ['b', 1000, Date.now(), 'tok', null, null, true]);
console.log(r.rows.map((x: any) => x['QUERY PLAN']).join('\n'));
const ids = (await c.query(`SELECT ids FROM leases WHERE token='tok'`)).rows[0].ids;
const r2 = await c.query(`EXPLAIN (ANALYZE, BUFFERS) ${pgQueries.complete}`, [ids, ids.map(() => 'tok'), Date.now(), 'chan']);
console.log(r2.rows.map((x: any) => x['QUERY PLAN']).join('\n'));
await c.query('ROLLBACK'); c.release();
await q.close(); await pool.query(`DROP SCHEMA ${schema} CASCADE`); await store.close();
