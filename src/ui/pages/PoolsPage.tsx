import { get, type PoolsView, type QueueView } from '../api.js';
import { duration } from '../format.js';
import { usePolled } from '../live.js';

/** This node's pools (slots, workers) and every queue's messages by state and priority class, refreshed live. */
export function PoolsPage() {
  const pools = usePolled(() => get<PoolsView>('/v1/pools'), 1_000, []);
  const queues = usePolled(() => get<{ queues: QueueView[] }>('/v1/queues'), 2_000, []);
  const p = pools.data;
  return (
    <section className="pools">
      <h2>Pools {p && <span className="muted">· {p.capacity} slots on this node</span>}</h2>
      {pools.error && <p className="error">{pools.error.message}</p>}
      <table className="list" data-testid="pools">
        <thead>
          <tr>
            <th>Pool</th>
            <th>Slots in use</th>
            <th>Waiting</th>
            <th>Workers</th>
            <th>Started (on the invocation path)</th>
          </tr>
        </thead>
        <tbody>
          {p?.pools.map((x) => {
            const started = Object.values(x.runtimes).reduce((n, r) => n + r.started, 0);
            const onPath = Object.values(x.runtimes).reduce(
              (n, r) => n + ((r as { startedOnInvocation?: number }).startedOnInvocation ?? 0),
              0,
            );
            return (
              <tr key={x.pool}>
                <td>{x.pool}</td>
                <td>
                  <meter min={0} max={Math.max(1, p.capacity)} value={x.running} /> {x.running}
                </td>
                <td>{x.waiting}</td>
                <td>{x.workers}</td>
                <td>
                  {started} ({onPath})
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <h2>Queues</h2>
      <table className="list" data-testid="queues">
        <thead>
          <tr>
            <th>Queue</th>
            <th>Pending</th>
            <th>Invisible</th>
            <th>Running</th>
            <th>Completed</th>
            <th>Errored</th>
            <th>Ready by priority class (oldest wait)</th>
          </tr>
        </thead>
        <tbody>
          {queues.data?.queues.map((q) => (
            <tr key={q.name}>
              <td className="mono">{q.name}</td>
              <td>{q.counts.pending ?? 0}</td>
              <td>{q.counts.invisible ?? 0}</td>
              <td>{q.counts.running ?? 0}</td>
              <td>{q.counts.completed ?? 0}</td>
              <td>{q.counts.errored ?? 0}</td>
              <td>
                {q.ready.map((c) => (
                  <span key={c.class} className="pill">
                    {c.class}: {c.n} ({duration(Date.now() - c.oldest)})
                  </span>
                ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {p && (
        <>
          <h2>Functions on this node</h2>
          <table className="list">
            <thead>
              <tr>
                <th>Function</th>
                <th>Version</th>
                <th>Pool</th>
                <th>Runtime</th>
              </tr>
            </thead>
            <tbody>
              {p.functions.map((f) => (
                <tr key={`${f.name}@${f.version}`}>
                  <td>{f.name}</td>
                  <td className="mono">{f.version}</td>
                  <td>{f.pool}</td>
                  <td>{f.runtime}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
