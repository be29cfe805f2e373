import { get, type ServiceRecord } from '../api.js';
import { time } from '../format.js';
import { usePolled } from '../live.js';
import { Link } from '../router.js';
import { JsonView } from '../components/JsonView.js';

interface Definition {
  operations?: { name: string; workflow?: string; version?: string }[];
  functions?: { name: string; version?: string; pool?: string; runtime?: string }[];
}

function names<T extends { name: string }>(v: unknown): T[] {
  return Array.isArray(v)
    ? (v as T[])
    : v && typeof v === 'object'
      ? Object.entries(v).map(([name, d]) => ({ name, ...(d as object) }) as T)
      : [];
}

/** Every deployed service: owner, operations, functions and versions, what it calls. */
export function ServicesPage() {
  const { data, error } = usePolled(() => get<{ services: ServiceRecord[] }>('/v1/services'), 10_000, []);
  if (error) return <p className="error">{error.message}</p>;
  if (!data) return <p className="muted">Loading…</p>;
  return (
    <section className="services">
      {data.services.length === 0 && <p className="muted">No services deployed.</p>}
      {data.services.map((s) => {
        const d = s.definition as Definition;
        return (
          <article key={s.name} className="card" data-testid="service">
            <h2>{s.name}</h2>
            {s.description && <p>{s.description}</p>}
            <p>
              owner <b>{s.owner.team}</b>
              {s.owner.contact && ` (${s.owner.contact})`} · deployed {time(s.deployedAt)} ·{' '}
              <Link to={`/?service=${encodeURIComponent(s.name)}`}>executions</Link>
            </p>
            <p>calls: {s.calls.length === 0 ? <span className="muted">nothing</span> : s.calls.join(', ')}</p>
            <h3>Operations</h3>
            <ul>
              {names<{ name: string; workflow?: string; version?: string }>(d.operations).map((o) => (
                <li key={o.name}>
                  <b>{o.name}</b> {o.version && <span className="muted">v{o.version}</span>}
                </li>
              ))}
            </ul>
            <h3>Functions</h3>
            <ul>
              {names<{ name: string; version?: string; pool?: string; runtime?: string }>(d.functions).map(
                (f) => (
                  <li key={f.name}>
                    <b>{f.name}</b> {f.version && <span className="muted mono">v{f.version}</span>}{' '}
                    {f.pool && <span className="muted">pool {f.pool}</span>}{' '}
                    {f.runtime && <span className="muted">{f.runtime}</span>}
                  </li>
                ),
              )}
            </ul>
            <details>
              <summary>definition</summary>
              <JsonView value={s.definition} />
            </details>
          </article>
        );
      })}
    </section>
  );
}
