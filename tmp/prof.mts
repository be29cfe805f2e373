import { openStore } from '../src/store/open.js';
import { Queue } from '../src/queue/queue.js';
const schema = `prof_${process.pid}`;
const store = await openStore({ kind: 'postgres', url: 'postgres://postgres@127.0.0.1:5432/test', schema, poolSize: 4 } as never);
const q = new Queue(store);
for (let i = 0; i < 20; i++) await q.enqueueMany(Array.from({ length: 5000 }, (_, j) => ({ queue: 'b', payload: { n: i * 5000 + j } })));
const pool = (store as any).pool;
await pool.query('VACUUM ANALYZE');
let tDeq = 0, tCom = 0, n = 0;
for (;;) {
  const t0 = performance.now();
  const batch = await q.dequeue({ queue: 'b', max: 1000 });
  const t1 = performance.now();
  if (batch.length === 0) break;
  await q.completeMany(batch.map((m) => m.lease));
  const t2 = performance.now();
  tDeq += t1 - t0; tCom += t2 - t1; n += batch.length;
}
console.log(`dequeue ${(tDeq * 1000 / n).toFixed(2)} µs/msg, complete ${(tCom * 1000 / n).toFixed(2)} µs/msg`);
await q.close(); await pool.query(`DROP SCHEMA ${schema} CASCADE`); await store.close();
