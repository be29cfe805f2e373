import { useCallback, useEffect, useState } from 'react';
import { get, type ExecutionView, type Span, type Trace } from '../api.js';
import { Gantt } from '../components/Gantt.js';
import { JsonView } from '../components/JsonView.js';
import { SpanDetails } from '../components/SpanDetails.js';
import { StateSteps } from '../components/StateSteps.js';
import { duration, time } from '../format.js';
import { useLive } from '../live.js';
import { Link } from '../router.js';

/** One execution: its timeline across services, the selected request's details, its state step by step. */
export function ExecutionPage({ id }: { id: string }) {
  const [x, setX] = useState<ExecutionView>();
  const [trace, setTrace] = useState<Trace>();
  const [error, setError] = useState<string>();
  const [selected, setSelected] = useState<Span>();
  const path = `/v1/executions/${encodeURIComponent(id)}`;
  const load = useCallback(() => {
    Promise.all([get<ExecutionView>(path), get<Trace>(`${path}/trace`)]).then(
      ([v, t]) => {
        setX(v);
        setTrace(t);
        setError(undefined);
        // Keep the selection on the same span as it updates.
        setSelected((s) => (s ? (t.spans.find((n) => n.id === s.id) ?? s) : s));
      },
      (e: unknown) => setError(e instanceof Error ? e.message : String(e)),
    );
  }, [path]);
  useEffect(load, [load]);
  const running = x?.status === 'running';
  useLive((m) => {
    if ('reload' in m || m.executions.some((c) => c.executionId === id || c.executionId.startsWith(`${id}.`)))
      load();
  }, running);
  if (error) return <p className="error">{error}</p>;
  if (!x || !trace) return <p className="muted">Loading…</p>;
  return (
    <section className="execution">
      <h2>
        <span className="mono">{x.executionId}</span> <span className={`status ${x.status}`}>{x.status}</span>
      </h2>
      <p>
        {x.service ? `${x.service}.${x.operation}` : x.workflow} <span className="muted">v{x.version}</span> ·
        started {time(x.createdAt)}
        {x.durationMs !== undefined && ` · took ${duration(x.durationMs)}`}
        {x.parentId && (
          <>
            {' '}
            · child of{' '}
            <Link to={`/executions/${encodeURIComponent(x.parentId)}`} className="mono">
              {x.parentId}
            </Link>
          </>
        )}
      </p>
      <div className="split">
        <div className="main-col">
          <Gantt spans={trace.spans} selected={selected?.id} onSelect={setSelected} />
          {trace.truncated && <p className="muted">The trace is larger than shown.</p>}
          {trace.children.length > 0 && (
            <>
              <h3>Child executions</h3>
              <ul className="children" data-testid="children">
                {trace.children.map((c) => (
                  <li key={c.executionId}>
                    <Link to={`/executions/${encodeURIComponent(c.executionId)}`} className="mono">
                      {c.executionId}
                    </Link>{' '}
                    {c.service}.{c.operation} <span className={`status ${c.status}`}>{c.status}</span>{' '}
                    <span className="muted">{duration(c.durationMs)}</span>
                  </li>
                ))}
              </ul>
            </>
          )}
          <div className="io">
            <div>
              <h3>Input</h3>
              <JsonView value={x.input} />
            </div>
            {x.output !== undefined && (
              <div data-testid="output">
                <h3>Output</h3>
                <JsonView value={x.output} />
              </div>
            )}
            {x.error && (
              <div>
                <h3>Error</h3>
                <JsonView value={x.error} />
              </div>
            )}
          </div>
          <h3>State after each step</h3>
          <StateSteps events={trace.events} />
        </div>
        {selected && <SpanDetails span={selected} rootEvents={trace.events} rootId={x.executionId} />}
      </div>
    </section>
  );
}
