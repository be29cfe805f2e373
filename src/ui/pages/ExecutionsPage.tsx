import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { get, query, type ExecutionSummary, type Page, type ServiceRecord } from '../api.js';
import { duration, time } from '../format.js';
import { useLive } from '../live.js';
import { Link, navigate } from '../router.js';

const STATUSES = ['', 'running', 'succeeded', 'failed', 'canceled'];

/** The executions list: filters and search in the URL, cursor pages, live updates on the first page. */
export function ExecutionsPage({ search }: { search: URLSearchParams }) {
  const service = search.get('service') ?? '';
  const status = search.get('status') ?? '';
  const q = search.get('q') ?? '';
  const cursor = search.get('cursor') ?? '';
  const [page, setPage] = useState<Page<ExecutionSummary>>();
  const [error, setError] = useState<string>();
  const [services, setServices] = useState<string[]>([]);
  const [text, setText] = useState(q);
  const [live, setLive] = useState(true);
  useEffect(() => setText(q), [q]);

  const load = useCallback(() => {
    get<Page<ExecutionSummary>>(`/v1/executions${query({ service, status, q, cursor, limit: '50' })}`).then(
      (p) => {
        setPage(p);
        setError(undefined);
      },
      (e: unknown) => setError(String(e instanceof Error ? e.message : e)),
    );
  }, [service, status, q, cursor]);
  useEffect(load, [load]);
  useEffect(() => {
    get<{ services: ServiceRecord[] }>('/v1/services').then(
      (s) => setServices(s.services.map((x) => x.name)),
      () => undefined,
    );
  }, []);
  // Only the first page moves: later pages are a snapshot the reader is walking through.
  const { connected } = useLive(load, live && cursor === '');

  const go = (params: Record<string, string>): void =>
    navigate(`/${query({ service, status, q, ...params, cursor: params.cursor ?? '' })}`);
  const submit = (e: FormEvent): void => {
    e.preventDefault();
    go({ q: text.trim() });
  };

  return (
    <section>
      <form className="filters" onSubmit={submit}>
        <input
          type="search"
          name="q"
          placeholder="Search: execution id, workflow, input or output text"
          value={text}
          onChange={(e) => setText(e.target.value)}
          aria-label="Search executions"
        />
        <select value={service} onChange={(e) => go({ service: e.target.value })} aria-label="Service">
          <option value="">all services</option>
          {services.map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
        <select value={status} onChange={(e) => go({ status: e.target.value })} aria-label="Status">
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {s || 'any status'}
            </option>
          ))}
        </select>
        <button type="submit">Search</button>
        <label className="live" title="Update the first page as executions change">
          <input type="checkbox" checked={live} onChange={(e) => setLive(e.target.checked)} />
          live {live && cursor === '' ? (connected ? '●' : '○') : ''}
        </label>
      </form>
      {error && <p className="error">{error}</p>}
      <table className="list" data-testid="executions">
        <thead>
          <tr>
            <th>Execution</th>
            <th>Operation</th>
            <th>Status</th>
            <th>Started</th>
            <th>Duration</th>
          </tr>
        </thead>
        <tbody>
          {page?.items.map((x) => (
            <tr key={x.executionId} data-testid="execution-row">
              <td className="mono">
                <Link to={`/executions/${encodeURIComponent(x.executionId)}`}>{x.executionId}</Link>
                {x.parentId && <span className="muted"> (child)</span>}
              </td>
              <td>{x.service ? `${x.service}.${x.operation}` : x.workflow}</td>
              <td>
                <span className={`status ${x.status}`}>{x.status}</span>
              </td>
              <td>{time(x.createdAt)}</td>
              <td>{duration(x.durationMs)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {page && page.items.length === 0 && <p className="muted">No executions match.</p>}
      <div className="pager">
        {cursor !== '' && <button onClick={() => go({ cursor: '' })}>« Newest</button>}
        {page?.nextCursor && <button onClick={() => go({ cursor: page.nextCursor! })}>Older »</button>}
      </div>
    </section>
  );
}
