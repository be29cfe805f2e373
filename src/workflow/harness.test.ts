import { describe, expect, it } from 'vitest';
import { encodeDag, encodeFunctions, encodeRules } from '../../test/fixtures/workflows/encode.js';
import { rule, rules, type Workflow } from './define.js';
import { dag } from './dag.js';
import { testWorkflow } from './harness.js';

describe('the encode shape (split → 31 parallel encodes → assemble after all → index)', () => {
  const forms = { rules: encodeRules, dag: encodeDag } as const;
  for (const form of ['rules', 'dag'] as const) {
    it(`runs in ${form} form with real functions`, async () => {
      const h = testWorkflow(forms[form] as Workflow<{ frames: number }, object>, {
        functions: encodeFunctions,
      });
      h.start({ frames: 248 });
      expect(h.pending().map((p) => p.target)).toEqual(['split']);
      await h.step();
      // All 31 encodes are out at once: the fan-out is one firing.
      const encodes = h.pending();
      expect(encodes).toHaveLength(31);
      expect(new Set(encodes.map((p) => p.target))).toEqual(new Set(['encode']));
      expect(encodes.map((p) => p.key)).toEqual(
        form === 'rules' ? encodes.map((_, i) => `c${i}`) : encodes.map((_, i) => String(i)),
      );
      // Answer them out of order; assemble is requested only with the last one.
      const order = encodes.map((p) => p.pid).reverse();
      for (const [i, pid] of order.entries()) {
        const p = encodes.find((e) => e.pid === pid)!;
        h.resolve(pid, `enc(${(p.input as { id: string }).id})`);
        const waiting = h.pending().map((q) => q.target);
        if (i < 30) expect(waiting).not.toContain('assemble');
        else expect(waiting).toEqual(['assemble']);
      }
      expect((h.pending()[0]!.input as { parts: string[] }).parts).toEqual(
        Array.from({ length: 31 }, (_, i) => `enc(c${i})`),
      );
      await h.step();
      expect(h.pending().map((p) => p.target)).toEqual(['index']);
      await h.run();
      expect(h.status).toBe('succeeded');
      expect((h.output as { index: { chunks: number } }).index).toEqual({ chunks: 31 });
    });
  }

  it('records the state after each firing', async () => {
    const h = testWorkflow(encodeRules, { functions: encodeFunctions });
    h.start({ frames: 16 });
    await h.run();
    expect(h.history.map((f) => f.fired)).toEqual([
      ['split'],
      ['encode-chunks'],
      [],
      ['assemble'],
      ['index'],
      [],
    ]);
    expect(h.history[1]!.state).toMatchObject({ pending: 2 });
    expect(h.history[3]!.state).toMatchObject({ pending: -1, encoded: { c0: 'enc(c0:0-8)' } });
  });
});

describe('rule semantics', () => {
  it('runs the error section once, after the attempts are spent', async () => {
    let calls = 0;
    const h = testWorkflow(encodeRules, {
      functions: {
        ...encodeFunctions,
        encode: (input) => {
          calls++;
          if ((input as { id: string }).id === 'c1') throw new Error('codec exploded');
          return 'ok';
        },
      },
      attempts: 3,
    });
    h.start({ frames: 16 });
    await h.run();
    expect(calls).toBe(1 + 3);
    expect(h.status).toBe('failed');
    expect(h.state).toMatchObject({ failures: ['codec exploded'] });
    expect(h.error).toMatchObject({ message: 'codec exploded' });
  });

  it('fails the execution when a failure reaches a rule without an error section', async () => {
    const h = testWorkflow(encodeRules, {
      functions: { ...encodeFunctions, split: () => Promise.reject(new Error('no such file')) },
      attempts: 2,
    });
    h.start({ frames: 16 });
    await h.run();
    expect(h.status).toBe('failed');
    expect(h.error!.message).toMatch(
      /split \(requested by rule "split", which has no error section\) failed: no such file/,
    );
  });

  it('fails with a clear error naming a rule that fires without progress', () => {
    const wf = rules<unknown, { n: number }>({
      initial: () => ({ n: 0 }),
      rules: [
        rule('count', { match: (s) => s.n < 2, action: (s) => void s.n++ }),
        rule('stuck', { match: (s) => s.n === 2, action: () => undefined }),
      ],
    });
    const h = testWorkflow(wf);
    const f = h.start(undefined);
    expect(f.fired).toEqual(['count', 'count', 'stuck']);
    expect(h.status).toBe('failed');
    expect(h.error).toMatchObject({ code: 'workflow_no_progress', details: { rule: 'stuck' } });
    expect(h.error!.message).toMatch(/rule "stuck" matched but its action changed nothing/);
  });

  it('fails a rule set that never settles', () => {
    const wf = rules<unknown, { n: number }>({
      initial: () => ({ n: 0 }),
      rules: [rule('forever', { match: () => true, action: (s) => void s.n++ })],
    });
    const h = testWorkflow(wf);
    h.start(undefined);
    expect(h.error).toMatchObject({ code: 'workflow_rules_unsettled' });
  });

  it('fails as stalled when nothing is left to do and the workflow did not complete', () => {
    const wf = rules<unknown, { done: boolean }>({
      initial: () => ({ done: false }),
      rules: [rule('once', { match: (s) => !s.done, action: (s) => void (s.done = true) })],
    });
    const h = testWorkflow(wf);
    h.start(undefined);
    expect(h.error).toMatchObject({ code: 'workflow_stalled' });
  });

  it('names the rule whose code threw', () => {
    const wf = rules<unknown, object>({
      initial: () => ({}),
      rules: [
        rule('broken', {
          match: () => true,
          action: () => {
            throw new Error('oops');
          },
        }),
      ],
    });
    const h = testWorkflow(wf);
    h.start(undefined);
    expect(h.error).toMatchObject({
      code: 'workflow_rule_threw',
      message: 'action of rule "broken" threw: oops',
    });
  });

  it('wakes an always-on execution with signals and keeps it open', () => {
    const wf = rules<unknown, { seen: string[]; acked: number }>({
      initial: () => ({ seen: [], acked: 0 }),
      alwaysOn: true,
      signals: {
        note: (s, payload) => {
          s.seen.push(String(payload));
        },
      },
      rules: [
        rule('ack', {
          match: (s) => s.acked < s.seen.length,
          action: (s) => void (s.acked = s.seen.length),
        }),
        rule('stop', { match: (s) => s.seen.includes('bye'), action: (s, ctx) => ctx.complete(s.seen) }),
      ],
    });
    const h = testWorkflow(wf);
    expect(h.start(undefined).fired).toEqual([]);
    expect(h.status).toBe('running');
    expect(h.signal('note', 'hello').fired).toEqual(['ack']);
    expect(h.state).toEqual({ seen: ['hello'], acked: 1 });
    expect(h.status).toBe('running');
    h.signal('note', 'bye');
    expect(h.status).toBe('succeeded');
    expect(h.output).toEqual(['hello', 'bye']);
    expect(() => h.signal('note', 'late')).not.toThrow();
    expect(h.history.at(-1)!.trace[0]).toMatchObject({ kind: 'dropped' });
  });

  it('refuses an unknown signal by failing with its name', () => {
    const wf = rules<unknown, object>({
      initial: () => ({}),
      alwaysOn: true,
      rules: [rule('never', { match: () => false, action: () => undefined })],
    });
    const h = testWorkflow(wf);
    h.start(undefined);
    h.signal('nope');
    expect(h.error).toMatchObject({ code: 'workflow_signal_unknown' });
  });

  it('fires durable timers on the virtual clock', () => {
    const wf = rules<unknown, { woke?: number; slept: boolean }>({
      initial: () => ({ slept: false }),
      rules: [
        rule('nap', {
          match: (s) => !s.slept,
          action: (s, ctx) => {
            s.slept = true;
            ctx.sleep(60_000, { key: 'nap' });
          },
          reaction: (s, r, ctx) => {
            s.woke = ctx.now();
            expect(r).toMatchObject({ kind: 'timer', key: 'nap' });
            ctx.complete();
          },
        }),
      ],
    });
    const h = testWorkflow(wf, { now: 1_000 });
    h.start(undefined);
    expect(h.pending()).toMatchObject([{ kind: 'timer', due: 61_000 }]);
    expect(h.advance(59_999)).toEqual([]);
    expect(h.advance(1)).toHaveLength(1);
    expect(h.state.woke).toBe(61_000);
    expect(h.status).toBe('succeeded');
  });

  it('withdraws every outstanding request when canceled, and drops answers that come later', () => {
    const h = testWorkflow(encodeRules, { functions: encodeFunctions });
    h.start({ frames: 16 });
    const [split] = h.pending();
    const f = h.cancel('user asked');
    expect(h.status).toBe('canceled');
    expect(h.error).toMatchObject({ code: 'execution_canceled', message: 'user asked' });
    expect(f.trace.map((t) => t.kind)).toEqual(['canceled']);
    expect(h.pending()).toEqual([]);
    expect(() => h.resolve(split!.pid, [])).toThrow(/no request/);
  });

  it('delivers a child execution result to the rule that called it', async () => {
    const wf = rules<unknown, { measured?: unknown }>({
      initial: () => ({}),
      rules: [
        rule('measure', {
          match: (s) => s.measured === undefined,
          action: (s, ctx) => {
            s.measured = null;
            ctx.call('quality', 'measure', { rendition: 'r1' });
          },
          reaction: (s, r, ctx) => {
            s.measured = r.output;
            expect(r).toMatchObject({ kind: 'call', target: 'quality.measure', id: 'test-execution.p1' });
            ctx.complete(r.output);
          },
        }),
      ],
    });
    const h = testWorkflow(wf, { calls: { 'quality.measure': (i) => ({ psnr: 41, of: i }) } });
    h.start(undefined);
    await h.run();
    expect(h.output).toEqual({ psnr: 41, of: { rendition: 'r1' } });
  });
});

describe('dag()', () => {
  it('refuses unknown dependencies, cycles and a reduce without a map', () => {
    expect(() => dag({ stages: { a: { fn: 'f', after: ['b'] } } })).toThrow(/unknown stage "b"/);
    expect(() => dag({ stages: { a: { fn: 'f', after: ['b'] }, b: { fn: 'f', after: ['a'] } } })).toThrow(
      /cycle: a → b → a/,
    );
    expect(() => dag({ stages: { a: { fn: 'f' }, b: { fn: 'f', after: ['a'], reduce: true } } })).toThrow(
      /depends on no map stage/,
    );
    expect(() => dag({ stages: { a: { fn: 'f', call: 'x.y' } } })).toThrow(/exactly one of fn or call/);
  });

  it('completes a map over an empty list without requests', async () => {
    const wf = dag<{ items: number[] }>({
      stages: {
        each: { map: ({ input }) => input.items, fn: 'f' },
        sum: { after: ['each'], reduce: true, fn: 'sum' },
      },
    });
    const h = testWorkflow(wf, {
      functions: { f: () => 1, sum: (i) => (i as { each: number[] }).each.length },
    });
    h.start({ items: [] });
    await h.run();
    expect(h.output).toBe(0);
  });
});
