import { describe, expect, it } from 'vitest';
import { replayStates } from '../../src/ui/replay.js';
import { testWorkflow } from '../../src/workflow/harness.js';
import type { TraceEvent } from '../../src/workflow/execution.js';
import { encodeFunctions, encodeRules } from '../fixtures/workflows/encode.js';

/** The UI rebuilds the state after each step from the initial state and each step's patches. */
describe('replaying the state from the trace', () => {
  it('gives, after every firing of a 31-way fan-out, the state the engine had', async () => {
    const h = testWorkflow(encodeRules, { functions: encodeFunctions });
    const events: TraceEvent[] = [];
    const after: { count: number; state: unknown }[] = [];
    let firing = h.start({ frames: 248 });
    for (;;) {
      events.push(...(JSON.parse(JSON.stringify(firing.trace)) as TraceEvent[]));
      after.push({ count: events.length, state: JSON.parse(JSON.stringify(firing.state)) });
      const next = await h.step();
      if (!next) break;
      firing = next;
    }
    expect(firing.status).toBe('succeeded');
    expect(after.length).toBeGreaterThan(31);
    for (const { count, state } of after) {
      const steps = replayStates(events.slice(0, count));
      expect(steps.at(-1)!.state).toEqual(state);
    }
    // Patches, not copies: the trace grows with the changes.
    const stored = events.filter((e) => e.kind !== 'started' && e.data && 'state' in e.data);
    expect(stored).toEqual([]);
  });

  it('applies array and object patches: add, replace, remove, and a shorter array', () => {
    const events: TraceEvent[] = [
      { kind: 'started', at: 0, data: { state: { list: [1, 2, 3], o: { a: 1 } } } },
      {
        kind: 'rule',
        at: 1,
        data: {
          patches: [
            { op: 'add', path: ['list', 3], value: 4 },
            { op: 'replace', path: ['o', 'a'], value: 2 },
            { op: 'add', path: ['o', 'b'], value: { deep: true } },
          ],
        },
      },
      {
        kind: 'reaction',
        at: 2,
        data: {
          patches: [
            { op: 'replace', path: ['list', 'length'], value: 2 },
            { op: 'remove', path: ['o', 'a'] },
          ],
        },
      },
    ];
    expect(replayStates(events).map((s) => s.state)).toEqual([
      { list: [1, 2, 3], o: { a: 1 } },
      { list: [1, 2, 3, 4], o: { a: 2, b: { deep: true } } },
      { list: [1, 2], o: { b: { deep: true } } },
    ]);
  });
});
