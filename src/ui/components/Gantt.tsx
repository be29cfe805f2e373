import { useMemo, useState } from 'react';
import type { Span } from '../api.js';
import { duration } from '../format.js';

interface Row {
  span: Span;
  depth: number;
  /** Rule firings of an execution, drawn as ticks on its row. */
  ticks: Span[];
  hasChildren: boolean;
}

/** Spans in tree order: each execution, then its requests, a call followed by the child execution it made. */
function rowsOf(spans: Span[], collapsed: Set<string>): Row[] {
  const byParent = new Map<string | null, Span[]>();
  const ids = new Set(spans.map((s) => s.id));
  for (const s of spans) {
    const p = s.parentId !== null && ids.has(s.parentId) ? s.parentId : null;
    byParent.set(p, [...(byParent.get(p) ?? []), s]);
  }
  const rows: Row[] = [];
  const walk = (s: Span, depth: number): void => {
    const kids = (byParent.get(s.id) ?? []).sort((a, b) => a.start - b.start);
    const shown = kids.filter((k) => k.kind !== 'rule');
    rows.push({
      span: s,
      depth,
      ticks: kids.filter((k) => k.kind === 'rule'),
      hasChildren: shown.length > 0,
    });
    if (collapsed.has(s.id)) return;
    for (const k of shown) walk(k, depth + 1);
  };
  for (const r of byParent.get(null) ?? []) walk(r, 0);
  return rows;
}

const ZOOMS = [1, 2, 4, 8, 16, 32];

/** Where in its bar an invocation ran (fractions of the bar), when the worker's times are known. */
function runOf(span: Span, end: number): { from: number; width: number } | undefined {
  const { startedAt, finishedAt } = span.attributes;
  if (span.kind !== 'invocation' || typeof startedAt !== 'number' || typeof finishedAt !== 'number')
    return undefined;
  const length = Math.max(1, end - span.start);
  const from = Math.min(1, Math.max(0, (startedAt - span.start) / length));
  return { from, width: Math.min(1 - from, Math.max(0, (finishedAt - startedAt) / length)) };
}

/** The trace as a timeline: one bar per span, nested child executions, zoom, click for details. */
export function Gantt(props: { spans: Span[]; selected?: string; onSelect: (s: Span) => void }) {
  const [zoom, setZoom] = useState(0);
  const [collapsed, setCollapsed] = useState<Set<string>>(new Set());
  const rows = useMemo(() => rowsOf(props.spans, collapsed), [props.spans, collapsed]);
  const now = Date.now();
  const t0 = Math.min(...props.spans.map((s) => s.start));
  const t1 = Math.max(...props.spans.map((s) => s.end ?? now));
  const range = Math.max(1, t1 - t0);
  const pct = (t: number): string => `${((t - t0) / range) * 100}%`;
  const toggle = (id: string): void =>
    setCollapsed((c) => {
      const next = new Set(c);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  if (props.spans.length === 0) return <p className="muted">No spans yet.</p>;
  const axis = [0, 0.25, 0.5, 0.75, 1];
  return (
    <div className="gantt" data-testid="timeline">
      <div className="gantt-tools">
        <span>
          {rows.length} rows, {duration(range)}
        </span>
        <span className="legend">
          <i className="swatch wait" /> waiting for a worker <i className="swatch ran" /> running
        </span>
        <button
          onClick={() => setZoom((z) => Math.max(0, z - 1))}
          disabled={zoom === 0}
          aria-label="Zoom out"
        >
          −
        </button>
        <span data-testid="zoom">{ZOOMS[zoom]}×</span>
        <button
          onClick={() => setZoom((z) => Math.min(ZOOMS.length - 1, z + 1))}
          disabled={zoom === ZOOMS.length - 1}
          aria-label="Zoom in"
        >
          +
        </button>
      </div>
      <div className="gantt-body">
        <div className="gantt-labels">
          <div className="gantt-axis-label" />
          {rows.map(({ span, depth, hasChildren }) => (
            <div
              key={span.id}
              className={`gantt-label ${props.selected === span.id ? 'sel' : ''}`}
              style={{ paddingLeft: `${depth * 14 + 4}px` }}
              title={span.id}
            >
              {hasChildren ? (
                <button className="twisty" onClick={() => toggle(span.id)} aria-label="Expand or collapse">
                  {collapsed.has(span.id) ? '▸' : '▾'}
                </button>
              ) : (
                <span className="twisty" />
              )}
              <span className={`kind ${span.kind}`}>{span.kind}</span> {span.name}
              {typeof span.attributes.key === 'string' && (
                <span className="muted"> [{span.attributes.key}]</span>
              )}
            </div>
          ))}
        </div>
        <div className="gantt-scroll">
          <div className="gantt-chart" style={{ width: `${ZOOMS[zoom]! * 100}%` }}>
            <div className="gantt-axis">
              {axis.map((f) => (
                <span key={f} style={{ left: `${f * 100}%` }}>
                  {duration(f * range)}
                </span>
              ))}
            </div>
            {rows.map(({ span, ticks }) => {
              const end = span.end ?? now;
              return (
                <div key={span.id} className={`gantt-row ${props.selected === span.id ? 'sel' : ''}`}>
                  <button
                    className={`bar ${span.kind} ${span.status}`}
                    data-testid="bar"
                    data-kind={span.kind}
                    data-name={span.name}
                    data-span={span.id}
                    style={{
                      left: pct(span.start),
                      width: `max(3px, ${((end - span.start) / range) * 100}%)`,
                    }}
                    title={`${span.kind} ${span.name}: ${duration(end - span.start)} (${span.status})${
                      typeof span.attributes.waitMs === 'number'
                        ? `, waited ${duration(span.attributes.waitMs)}, ran ${duration(Number(span.attributes.runMs))}`
                        : ''
                    }`}
                    onClick={() => props.onSelect(span)}
                  >
                    {runOf(span, end) && (
                      // The part spent running on a worker; the rest of the bar is the wait for one.
                      <span
                        className="run"
                        style={{
                          left: `${runOf(span, end)!.from * 100}%`,
                          width: `${runOf(span, end)!.width * 100}%`,
                        }}
                      />
                    )}
                  </button>
                  {ticks.map((t) => (
                    <span
                      key={t.id}
                      className="tick"
                      style={{ left: pct(t.start) }}
                      title={`rule ${t.name} fired at +${duration(t.start - t0)}`}
                    />
                  ))}
                </div>
              );
            })}
          </div>
        </div>
      </div>
    </div>
  );
}
