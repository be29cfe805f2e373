import { useMemo, useState } from 'react';
import type { TraceEvent } from '../api.js';
import { replayStates } from '../replay.js';
import { JsonView } from './JsonView.js';

const WHAT: Record<string, string> = {
  started: 'started',
  rule: 'rule fired',
  reaction: 'reaction',
  error: 'error section',
  signal: 'signal',
};

/** The state after each step that changed it: the start, each rule firing, each reaction or error section. */
export function StateSteps({ events }: { events: TraceEvent[] }) {
  const steps = useMemo(() => replayStates(events), [events]);
  const [open, setOpen] = useState<number | undefined>(steps.length > 0 ? steps.length - 1 : undefined);
  if (steps.length === 0) return <p className="muted">No state recorded.</p>;
  return (
    <ol className="steps" data-testid="state-steps">
      {steps.map(({ event: e, state }, i) => (
        <li key={i} className={open === i ? 'open' : ''}>
          <button onClick={() => setOpen(open === i ? undefined : i)} data-testid="state-step">
            {open === i ? '▾' : '▸'} {WHAT[e.kind] ?? e.kind} {e.rule ?? ''}
            {e.kind === 'reaction' && typeof e.data?.target === 'string' ? ` ← ${e.data.target}` : ''}
            <span className="muted"> step {e.step ?? '?'}</span>
          </button>
          {open === i && <JsonView value={state} />}
        </li>
      ))}
    </ol>
  );
}
