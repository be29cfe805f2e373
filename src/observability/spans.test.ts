import { describe, expect, it } from 'vitest';
import { gantt } from '../cli/format.js';
import type { Execution, TraceEvent } from '../workflow/execution.js';
import { spansOf } from './spans.js';

const doc = (over: Partial<Execution>): Execution => ({
  id: 'x',
  workflow: 'svc.op',
  version: 'v1',
  status: 'succeeded',
  input: {},
  state: {},
  priority: 0,
  seq: 3,
  nextPid: 3,
  outstanding: {},
  createdAt: 1_000,
  updatedAt: 1_400,
  finishedAt: 1_400,
  ...over,
});

const run = { startedAt: 1_050, finishedAt: 1_150, attempt: 1, node: 'h:1', batch: 1, runtime: 'thread' };

describe('spansOf', () => {
  it('derives execution, firing, invocation and call spans with parent links across executions', () => {
    const parent: TraceEvent[] = [
      { kind: 'started', at: 1_000 },
      { kind: 'rule', at: 1_000, rule: 'go', data: { requests: 2 } },
      {
        kind: 'reaction',
        at: 1_160,
        rule: 'go',
        data: { pid: 'p1', kind: 'invoke', target: 'f', key: 'k', requestedAt: 1_000, run },
      },
      {
        kind: 'error',
        at: 1_300,
        rule: 'go',
        data: {
          pid: 'p2',
          kind: 'call',
          target: 'b.op',
          requestedAt: 1_000,
          error: { code: 'boom', message: 'no' },
        },
      },
    ];
    const child = doc({
      id: 'x.p2',
      workflow: 'b.op',
      status: 'failed',
      parent: { id: 'x', pid: 'p2' },
      createdAt: 1_010,
      finishedAt: 1_290,
    });
    const spans = spansOf([
      { doc: doc({}), events: parent },
      { doc: child, events: [{ kind: 'started', at: 1_010 }] },
    ]);
    expect(spans.map((s) => [s.id, s.kind, s.parentId, s.status])).toEqual([
      ['x', 'execution', null, 'ok'],
      ['x/r1', 'rule', 'x', 'ok'],
      ['x/p1', 'invocation', 'x', 'ok'],
      ['x/p2', 'call', 'x', 'error'],
      ['x.p2', 'execution', 'x/p2', 'error'],
    ]);
    const inv = spans[2]!;
    expect([inv.start, inv.end, inv.name]).toEqual([1_000, 1_160, 'f']);
    expect(inv.attributes).toMatchObject({ key: 'k', waitMs: 50, runMs: 100, node: 'h:1' });
    expect(spans[3]!.attributes).toMatchObject({ childExecutionId: 'x.p2', error: { code: 'boom' } });
  });

  it('shows requests still out as open spans', () => {
    const x = doc({
      status: 'running',
      finishedAt: undefined,
      outstanding: { p1: { kind: 'timer', rule: 'wait', target: 'sleep', due: 9_000, at: 1_100 } },
    });
    const [exec, timer] = spansOf([{ doc: x, events: [] }]);
    expect(exec).toMatchObject({ end: null, status: 'running' });
    expect(timer).toMatchObject({
      id: 'x/p1',
      kind: 'timer',
      start: 1_100,
      end: null,
      status: 'running',
      attributes: { due: 9_000 },
    });
  });
});

describe('gantt', () => {
  it('draws one row per execution and request, nested, waiting then running', () => {
    const spans = spansOf([
      {
        doc: doc({}),
        events: [
          {
            kind: 'reaction',
            at: 1_400,
            rule: 'go',
            data: {
              pid: 'p1',
              kind: 'invoke',
              target: 'f',
              requestedAt: 1_000,
              run: { ...run, startedAt: 1_200, finishedAt: 1_400 },
            },
          },
        ],
      },
    ]);
    const rows = gantt(spans, 8);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(/^svc\.op\s+█{8}\s+400 ms$/);
    expect(rows[1]).toMatch(/^ {2}f\s+░{4}█{4}\s+400 ms$/);
  });
});
