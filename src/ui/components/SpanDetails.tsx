import { useEffect, useState } from 'react';
import { get, type Span, type Trace, type TraceEvent } from '../api.js';
import { duration, time } from '../format.js';
import { Link } from '../router.js';
import { JsonView } from './JsonView.js';

/** What a request was asked with and what came back, from the trace events of the execution that made it. */
function requestIo(
  events: TraceEvent[],
  pid: string,
): { input?: unknown; output?: unknown; error?: unknown } {
  const out: { input?: unknown; output?: unknown; error?: unknown } = {};
  for (const e of events) {
    const inputs = e.data?.inputs as Record<string, unknown> | undefined;
    if (inputs && pid in inputs) out.input = inputs[pid];
    if (e.data?.pid === pid && e.kind === 'reaction') out.output = e.data.output;
    if (e.data?.pid === pid && e.kind === 'error') out.error = e.data.error;
  }
  return out;
}

const SHOWN = [
  'attempt',
  'node',
  'worker',
  'runtime',
  'batch',
  'waitMs',
  'runMs',
  'rule',
  'key',
  'pid',
  'logsDropped',
];

/** The selected bar: timing, where it ran, its log lines, its input and output (blob previews for images). */
export function SpanDetails({
  span,
  rootEvents,
  rootId,
}: {
  span: Span;
  rootEvents: TraceEvent[];
  rootId: string;
}) {
  const [events, setEvents] = useState<TraceEvent[] | undefined>(
    span.executionId === rootId ? rootEvents : undefined,
  );
  useEffect(() => {
    if (span.executionId === rootId) return setEvents(rootEvents);
    let alive = true;
    get<Trace>(`/v1/executions/${encodeURIComponent(span.executionId)}/trace`).then(
      (t) => alive && setEvents(t.events),
      () => undefined,
    );
    return () => {
      alive = false;
    };
  }, [span.executionId, rootId, rootEvents]);
  const pid = typeof span.attributes.pid === 'string' ? span.attributes.pid : undefined;
  const io = pid && events ? requestIo(events, pid) : {};
  const child = span.attributes.childExecutionId;
  return (
    <aside className="details" data-testid="span-details">
      <h3>
        <span className={`kind ${span.kind}`}>{span.kind}</span> {span.name}{' '}
        <span className={`status ${span.status}`}>{span.status}</span>
      </h3>
      <dl>
        <dt>started</dt>
        <dd>{time(span.start)}</dd>
        <dt>took</dt>
        <dd>{span.end === null ? 'still running' : duration(span.end - span.start)}</dd>
        {SHOWN.filter((k) => span.attributes[k] !== undefined).map((k) => (
          <div key={k} className="pair">
            <dt>{k}</dt>
            <dd>{k.endsWith('Ms') ? duration(Number(span.attributes[k])) : String(span.attributes[k])}</dd>
          </div>
        ))}
        <dt>execution</dt>
        <dd className="mono">
          <Link to={`/executions/${encodeURIComponent(span.executionId)}`}>{span.executionId}</Link>
        </dd>
        {typeof child === 'string' && (
          <>
            <dt>child execution</dt>
            <dd className="mono">
              <Link to={`/executions/${encodeURIComponent(child)}`}>{child}</Link>
            </dd>
          </>
        )}
      </dl>
      {span.logs && span.logs.length > 0 && (
        <>
          <h4>Logs</h4>
          <ol className="logs">
            {span.logs.map((l, i) => (
              <li key={i} data-testid="log-line" className={l.level}>
                <span className="muted">{new Date(l.at).toLocaleTimeString()}</span> <b>{l.level}</b> {l.msg}
              </li>
            ))}
          </ol>
        </>
      )}
      {span.kind === 'invocation' && (!span.logs || span.logs.length === 0) && (
        <p className="muted">No log lines.</p>
      )}
      {io.input !== undefined && (
        <>
          <h4>Input</h4>
          <JsonView value={io.input} />
        </>
      )}
      {io.output !== undefined && (
        <>
          <h4>Output</h4>
          <JsonView value={io.output} />
        </>
      )}
      {(io.error ?? span.attributes.error) !== undefined && (
        <>
          <h4>Error</h4>
          <JsonView value={io.error ?? span.attributes.error} />
        </>
      )}
    </aside>
  );
}
