import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FunctionRuntime } from '../../src/functions/runtime.js';
import { Queue } from '../../src/queue/queue.js';
import type { ExecutionRow, Store } from '../../src/store/store.js';
import { rule, rules } from '../../src/workflow/define.js';
import { WorkflowEngine, type WorkflowEngineOptions } from '../../src/workflow/engine.js';
import { newExecution, step } from '../../src/workflow/evaluate.js';
import { EVENTS_QUEUE } from '../../src/workflow/events.js';
import type { Execution } from '../../src/workflow/execution.js';
import { storeKinds, type TestPlace } from '../support/stores.js';
import { encodeDag, encodeRules } from '../fixtures/workflows/encode.js';
import * as encodeFns from '../fixtures/workflows/encode.js';
import * as steps from '../fixtures/workflows/steps.js';
import * as basic from '../fixtures/functions/basic.js';
import { openBlobStore } from '../../src/store/blobs/open-blobs.js';

const ENCODE = 'test/fixtures/workflows/encode.ts';
const STEPS = 'test/fixtures/workflows/steps.ts';
const BASIC = 'test/fixtures/functions/basic.ts';

describe.each(storeKinds)('workflow engine on $name', (kind) => {
  let place: TestPlace;
  let store: Store;
  let queue: Queue;
  let dir: string;
  const nodes: { engine: WorkflowEngine; runtime: FunctionRuntime }[] = [];

  beforeEach(async () => {
    place = kind.place();
    store = await place.open();
    queue = new Queue(store);
    dir = mkdtempSync(join(tmpdir(), 'cosmos-wf-'));
  });
  afterEach(async () => {
    for (const n of nodes.splice(0)) {
      await n.engine.stop();
      await n.runtime.stop();
    }
    await queue.close();
    await store.close();
    await place.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  /** An engine and a function runtime on one node, with the fixture functions registered. */
  async function node(options: WorkflowEngineOptions = {}): Promise<WorkflowEngine> {
    const runtime = new FunctionRuntime(queue, {
      bundleDir: dir,
      capacity: 2,
      pollMs: 50,
      ...(options.logger && { logger: options.logger }),
    });
    for (const name of ['split', 'encode', 'assemble', 'index'] as const)
      await runtime.register(name, encodeFns[name], { module: ENCODE });
    for (const name of ['echo', 'broken', 'refuse', 'slow'] as const)
      await runtime.register(name, steps[name], { module: STEPS });
    const engine = new WorkflowEngine(queue, runtime, { pollMs: 50, ...options });
    nodes.push({ engine, runtime });
    await runtime.start();
    return engine;
  }

  /**
   * A commit another node made: the execution's row as given and, when it asked for one, the invocation on its
   * function's queue, answered to the events queue as the engine asks.
   */
  async function commitElsewhere(
    row: ExecutionRow,
    ask?: { fn: string; input: unknown; pid: string; key?: string },
  ): Promise<void> {
    let enqueue: Awaited<ReturnType<Queue['outbox']>> = [];
    if (ask) {
      const msg = nodes[0]!.runtime.invocationMessage(ask.fn, ask.input, {
        ...(ask.key !== undefined && { key: ask.key }),
        replyTo: EVENTS_QUEUE,
        replyKey: row.id,
        tag: { x: row.id, pid: ask.pid },
      })!;
      enqueue = await queue.outbox([
        { queue: msg.queue, payload: msg.payload, priority: 1, idempotencyKey: `${row.id}:${ask.pid}` },
      ]);
    }
    expect(
      await store.workflow.commitSteps([{ row, trace: null, enqueue, signals: [] }], row.updatedAt),
    ).toEqual([{ ok: true }]);
  }

  for (const direct of [true, false])
    it(`reports a failed invocation in JSON log lines with the execution and trace ids (${direct ? 'direct' : 'queued'})`, async () => {
      const lines: Record<string, unknown>[] = [];
      const logger = pino(
        { level: 'warn' },
        { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
      );
      const engine = await node({ direct, logger });
      await engine.register(
        'logs.refuse',
        rules<unknown, { asked: boolean }>({
          initial: () => ({ asked: false }),
          rules: [
            rule('ask', {
              match: (s) => !s.asked,
              action: (s, ctx) => {
                s.asked = true;
                ctx.invoke('refuse', {});
              },
            }),
          ],
        }),
      );
      await engine.start();
      const { id } = await engine.execute('logs.refuse', {});
      expect((await engine.wait(id, 20_000)).status).toBe('failed');
      const line = lines.find((l) => l.function === 'refuse');
      expect(line, JSON.stringify(lines)).toMatchObject({
        level: 40,
        executionId: id,
        traceId: id,
        class: 'user',
      });
      expect(JSON.stringify(line)).toContain('NonRetryableError: never');
      expect(line!.pid).toBe(process.pid);
    });

  for (const direct of [true, false])
    it(`runs the encode shape in rule and DAG form (${direct ? 'direct' : 'queued'} invocations)`, async () => {
      const engine = await node({ direct });
      await engine.register('media.encode', encodeRules);
      await engine.register('media.encodeDag', encodeDag);
      await engine.start();
      for (const name of ['media.encode', 'media.encodeDag']) {
        const { id, created } = await engine.execute(name, { frames: 248 });
        expect(created).toBe(true);
        const x = await engine.wait(id, 20_000);
        expect(x.status, JSON.stringify(x.error)).toBe('succeeded');
        expect(x.output).toMatchObject({ index: { chunks: 31 } });
        const trace = await engine.trace(id);
        const reactions = trace.filter((t) => t.kind === 'reaction');
        expect(reactions).toHaveLength(1 + 31 + 1 + 1);
        // assemble is requested only after the 31st encode answer.
        const assembleAt = trace.findIndex((t) => t.kind === 'rule' && /assemble/.test(t.rule ?? ''));
        const lastEncode = trace.findLastIndex(
          (t) => t.kind === 'reaction' && (t.data as { target: string }).target === 'encode',
        );
        expect(assembleAt).toBeGreaterThan(lastEncode);
        expect(trace.at(-1)!.kind).toBe('succeeded');
      }
    });

  it('runs the error section once the attempts are spent', async () => {
    const engine = await node();
    await engine.register(
      'w.err',
      rules<unknown, { errors: string[]; asked: boolean }>({
        initial: () => ({ errors: [], asked: false }),
        rules: [
          rule('ask', {
            match: (s) => !s.asked,
            action: (s, ctx) => {
              s.asked = true;
              ctx.invoke('broken', { why: 'disk full' });
            },
            error: (s, e, ctx) => {
              s.errors.push(`${e.code}: ${e.message}`);
              ctx.complete(s.errors);
            },
          }),
        ],
      }),
    );
    await engine.start();
    const { id } = await engine.execute('w.err', {});
    const x = await engine.wait(id, 20_000);
    expect(x.status).toBe('succeeded');
    expect(x.output).toEqual([expect.stringMatching(/^function_failed: .*disk full$/)]);
  });

  it("delivers a child execution's result to its parent", async () => {
    const engine = await node();
    await engine.register(
      'quality.measure',
      rules<{ r: string }, { psnr?: number }>({
        initial: () => ({}),
        rules: [
          rule('measure', {
            match: (s) => s.psnr === undefined,
            action: (s, ctx) => {
              s.psnr = 0;
              ctx.invoke('echo', { psnr: 42, r: ctx.input.r });
            },
            reaction: (_s, r, ctx) => ctx.complete(r.output),
          }),
        ],
      }),
    );
    await engine.register(
      'catalog.ingest',
      rules<unknown, { measured?: unknown }>({
        initial: () => ({}),
        rules: [
          rule('measure', {
            match: (s) => s.measured === undefined,
            action: (s, ctx) => {
              s.measured = null;
              ctx.call('quality', 'measure', { r: 'top' });
            },
            reaction: (s, r, ctx) => {
              s.measured = r.output;
              ctx.complete({ child: r.id, measured: r.output });
            },
          }),
        ],
      }),
    );
    await engine.start();
    const { id } = await engine.execute('catalog.ingest', {});
    const x = await engine.wait(id, 20_000);
    expect(x.status, JSON.stringify(x.error)).toBe('succeeded');
    expect(x.output).toEqual({ child: `${id}.p1`, measured: { psnr: 42, r: 'top' } });
    const child = await engine.get(`${id}.p1`);
    expect(child).toMatchObject({ status: 'succeeded', parent: { id, pid: 'p1' } });
  });

  it('wakes an always-on execution with a signal', async () => {
    const engine = await node();
    await engine.register(
      'inbox',
      rules<unknown, { notes: string[]; echoed: number }>({
        initial: () => ({ notes: [], echoed: 0 }),
        alwaysOn: true,
        signals: { note: (s, p) => void s.notes.push(String(p)) },
        rules: [
          rule('echo', {
            match: (s) => s.echoed < s.notes.length,
            action: (s, ctx) => {
              s.echoed = s.notes.length;
              ctx.invoke('echo', s.notes.at(-1));
            },
            reaction: (s, r, ctx) => {
              if (r.output === 'bye') ctx.complete(s.notes);
            },
          }),
        ],
      }),
    );
    await engine.start();
    const { id } = await engine.execute('inbox', {});
    await new Promise((r) => setTimeout(r, 100));
    expect((await engine.get(id))!.status).toBe('running');
    await engine.signal(id, 'note', 'hello');
    await engine.signal(id, 'note', 'bye');
    const x = await engine.wait(id, 20_000);
    expect(x.output).toEqual(['hello', 'bye']);
    await expect(engine.signal(id, 'note', 'late')).rejects.toMatchObject({ code: 'execution_finished' });
  });

  it('fires a timer after the engine restarts', async () => {
    const wf = rules<unknown, { slept: boolean }>({
      initial: () => ({ slept: false }),
      rules: [
        rule('nap', {
          match: (s) => !s.slept,
          action: (s, ctx) => {
            s.slept = true;
            ctx.sleep(400);
          },
          reaction: (_s, r, ctx) => ctx.complete(r.output),
        }),
      ],
    });
    const first = await node();
    await first.register('nap', wf);
    await first.start();
    const started = Date.now();
    const { id } = await first.execute('nap', {});
    const n = nodes.pop()!;
    await n.engine.stop();
    await n.runtime.stop();
    expect((await first.get(id))!.status).toBe('running');
    const second = await node();
    await second.register('nap', wf);
    await second.start();
    const x = await second.wait(id, 20_000);
    expect(x.status).toBe('succeeded');
    expect((x.output as { firedAt: number }).firedAt).toBeGreaterThanOrEqual(started + 400);
  });

  it('cancels an execution: its running invocation is told to stop', async () => {
    const engine = await node();
    await engine.register(
      'long',
      rules<unknown, { asked: boolean }>({
        initial: () => ({ asked: false }),
        rules: [
          rule('ask', {
            match: (s) => !s.asked,
            action: (s, ctx) => {
              s.asked = true;
              ctx.invoke('slow', {});
              ctx.sleep(60_000);
            },
          }),
        ],
      }),
    );
    await engine.start();
    const { id } = await engine.execute('long', {});
    await new Promise((r) => setTimeout(r, 200));
    await engine.cancel(id, 'no longer needed');
    const x = await engine.wait(id, 20_000);
    expect(x).toMatchObject({
      status: 'canceled',
      error: { code: 'execution_canceled', message: 'no longer needed' },
    });
    const trace = await engine.trace(id);
    expect(trace.at(-1)).toMatchObject({ kind: 'canceled' });
    // The timer's message was withdrawn.
    const ids = await store.workflow.messageIds('workflow.events', [`${id}:p2`]);
    await expect.poll(async () => (await queue.get(ids[0]!))?.state).toBe('canceled');
  });

  it('keeps an execution on its version; an opted-in workflow moves to the new one', async () => {
    const make = (version: string, reevaluateOnUpgrade: boolean) =>
      rules<unknown, { seen: string[] }>({
        version,
        alwaysOn: true,
        reevaluateOnUpgrade,
        initial: () => ({ seen: [] }),
        signals: { go: (s) => void s.seen.push(`signal@${version}`) },
        rules: [
          rule('finish', {
            match: (s) => s.seen.length > 0,
            action: (s, ctx) => ctx.complete([...s.seen, `finished@${version}`]),
          }),
        ],
      });
    const engine = await node();
    await engine.register('pinned', make('v1', false));
    await engine.register('moving', make('v1', true));
    await engine.start();
    const a = await engine.execute('pinned', {});
    const b = await engine.execute('moving', {});
    await engine.register('pinned', make('v2', false));
    await engine.register('moving', make('v2', true));
    await expect.poll(async () => (await engine.get(b.id))!.version).toBe('v2');
    expect((await engine.get(a.id))!.version).toBe('v1');
    await engine.signal(a.id, 'go');
    await engine.signal(b.id, 'go');
    expect((await engine.wait(a.id)).output).toEqual(['signal@v1', 'finished@v1']);
    expect((await engine.wait(b.id)).output).toEqual(['signal@v2', 'finished@v2']);
    const c = await engine.execute('pinned', {});
    expect((await engine.get(c.id))!.version).toBe('v2');
  });

  it('fails an execution whose rule makes no progress, naming the rule', async () => {
    const engine = await node();
    await engine.register(
      'stuck',
      rules<unknown, object>({
        initial: () => ({}),
        rules: [rule('spin', { match: () => true, action: () => undefined })],
      }),
    );
    await engine.start();
    const { id } = await engine.execute('stuck', {});
    const x = await engine.wait(id);
    expect(x.error).toMatchObject({ code: 'workflow_no_progress', details: { rule: 'spin' } });
  });

  it("recovers a dead node's local invocations even after a queued answer moved the execution first", async () => {
    // The shape a SIGKILL leaves: one invocation ran on the dead node itself (local, owned by it, its
    // ownership not lapsed yet) and one went through the queue. The queued answer lands here first.
    const engine = await node({ leaseMs: 300 });
    const pair = rules<unknown, { asked: boolean; got: Record<string, number> }>({
      initial: () => ({ asked: false, got: {} }),
      rules: [
        rule('ask', {
          match: (s) => !s.asked,
          action: (s, ctx) => {
            s.asked = true;
            ctx.invoke('echo', 'a', { key: 'a' });
            ctx.invoke('echo', 'b', { key: 'b' });
          },
          reaction: (s, r, ctx) => {
            s.got[r.key!] = (s.got[r.key!] ?? 0) + 1;
            if (Object.keys(s.got).length === 2) ctx.complete(s.got);
          },
        }),
      ],
    });
    const { version } = await engine.register('w.pair', pair);
    const now = Date.now();
    const started = step(
      pair,
      newExecution({ id: 'orphan', workflow: 'w.pair', version, input: {}, priority: 1, now }),
      { kind: 'start' },
      now,
    );
    const doc = started.execution;
    const [local, queued] = started.effects.map((e) => (e.kind === 'invoke' ? e : undefined));
    doc.outstanding[local!.pid] = { ...doc.outstanding[local!.pid]!, local: { input: 'a', priority: 1 } };
    await commitElsewhere(
      {
        id: 'orphan',
        workflow: 'w.pair',
        version,
        status: 'running',
        priority: 1,
        parentId: null,
        seq: 1,
        doc: JSON.stringify(doc),
        createdAt: now,
        updatedAt: now,
        finishedAt: null,
        owner: 'a-node-that-died',
        ownerUntil: now + 1_000,
      },
      { fn: 'echo', input: 'b', pid: queued!.pid, key: 'b' },
    );
    await engine.start();
    const x = await engine.wait('orphan', 10_000);
    expect(x.status).toBe('succeeded');
    expect(x.output).toEqual({ a: 1, b: 1 });
  });

  it('applies an answer to the newest copy even after this node read the execution for an event that changed nothing', async () => {
    // The shape that left fault-test executions waiting forever: this node reads an execution for an event
    // that changes nothing (a late or duplicate answer), another node then moves it and asks for one more
    // invocation, and that invocation's answer comes here. The old read lacks the request it answers.
    const engine = await node({ direct: false });
    const chain = rules<unknown, { asked: number; got: number }>({
      initial: () => ({ asked: 0, got: 0 }),
      rules: [
        rule('ask', {
          match: (s) => s.asked === s.got && s.got < 2,
          action: (s, ctx) => {
            s.asked++;
            ctx.invoke('echo', s.asked, { key: `n${s.asked}` });
          },
          reaction: (s, r, ctx) => {
            s.got++;
            if (s.got === 2) ctx.complete({ last: r.output });
          },
        }),
      ],
    });
    const { version } = await engine.register('w.chain', chain);
    const now = Date.now();
    const row = (seq: number, doc: unknown) => ({
      id: 'moved',
      workflow: 'w.chain',
      version,
      status: 'running' as const,
      priority: 1,
      parentId: null,
      seq,
      doc: JSON.stringify(doc),
      createdAt: now,
      updatedAt: now,
      finishedAt: null,
      owner: null,
      ownerUntil: null,
    });
    // Seq 1: the first request is out (its answer is never sent: the other node will have taken it).
    const first = step(
      chain,
      newExecution({ id: 'moved', workflow: 'w.chain', version, input: {}, priority: 1, now }),
      { kind: 'start' },
      now,
    );
    const firstPid = (first.effects[0] as { pid: string }).pid;
    await commitElsewhere(row(1, first.execution));
    await engine.start();

    // An answer for a request the execution no longer has: this node reads the execution and changes nothing.
    const [late] = await queue.enqueueMany([
      {
        queue: EVENTS_QUEUE,
        exclusivityKey: 'moved',
        priority: 1,
        payload: { x: 'moved', e: { kind: 'result', pid: 'withdrawn', ok: true, output: null } },
      },
    ]);
    await vi.waitFor(async () => expect((await queue.get(late!.id))?.state).toBe('completed'), {
      timeout: 5_000,
      interval: 20,
    });

    // Another node applies the first answer (seq 2) and its reaction asks for the second invocation.
    const second = step(chain, first.execution, { kind: 'result', pid: firstPid, ok: true, output: 1 }, now);
    const secondPid = (second.effects[0] as { pid: string }).pid;
    await commitElsewhere(row(2, second.execution), { fn: 'echo', input: 2, pid: secondPid, key: 'n2' });

    // This node's function runtime answers the second invocation, and this node's engine applies it.
    const x = await engine.wait('moved', 10_000);
    expect(x.status).toBe('succeeded');
    expect(x.output).toEqual({ last: 2 });
  });

  it('applies an answer that the copy of a node running a local invocation lacks', async () => {
    // This node keeps the execution in memory while its local invocation runs; meanwhile another node moves
    // it (a signal) and asks for an invocation whose answer comes here. The answer must not be judged on the
    // copy in memory, which has never heard of that request.
    const engine = await node({ leaseMs: 60_000 });
    const wf = rules<unknown, { held: boolean; notes: number; echoed: number }>({
      initial: () => ({ held: false, notes: 0, echoed: 0 }),
      signals: { note: (s) => void s.notes++ },
      rules: [
        rule('hold', {
          match: (s) => !s.held,
          action: (s, ctx) => {
            s.held = true;
            ctx.invoke('slow', {});
          },
          reaction: () => undefined,
        }),
        rule('echo', {
          match: (s) => s.echoed < s.notes,
          action: (s, ctx) => {
            s.echoed = s.notes;
            ctx.invoke('echo', s.notes);
          },
          reaction: (_s, r, ctx) => ctx.complete(r.output),
        }),
      ],
    });
    await engine.register('w.held', wf);
    await engine.start();
    const { id } = await engine.execute('w.held', {}, { id: 'held' });
    const [row] = await store.workflow.getExecutions([id]);
    const doc = JSON.parse(row!.doc) as Execution<{ held: boolean; notes: number; echoed: number }>;
    expect(Object.values(doc.outstanding).map((o) => o.local !== undefined)).toEqual([true]);

    const now = Date.now();
    const moved = step(wf, doc, { kind: 'signal', name: 'note', payload: null }, now);
    const pid = (moved.effects.find((e) => e.kind === 'invoke') as { pid: string }).pid;
    await commitElsewhere(
      { ...row!, seq: row!.seq + 1, doc: JSON.stringify(moved.execution) },
      { fn: 'echo', input: 1, pid },
    );

    const x = await engine.wait(id, 10_000);
    expect(x.status).toBe('succeeded');
    expect(x.output).toBe(1);
  });

  it('moves the search rows of its commits into the index on its own timer', async () => {
    const indexSearch = vi.spyOn(store.workflow, 'indexSearch');
    const engine = await node();
    await engine.register(
      'w.findable',
      rules<{ title: string }, { asked: boolean }>({
        initial: () => ({ asked: false }),
        rules: [
          rule('ask', {
            match: (s) => !s.asked,
            action: (s, ctx) => {
              s.asked = true;
              ctx.invoke('echo', 'done');
            },
            reaction: (_s, r, ctx) => ctx.complete(r.output),
          }),
        ],
      }),
    );
    await engine.start();
    const { id } = await engine.execute('w.findable', { title: 'needle in a haystack' });
    await engine.wait(id, 10_000);
    // Found at once (from the backlog), then moved by the engine's timer within about a second.
    expect((await store.workflow.listExecutions({ limit: 10, q: 'needle' })).map((r) => r.id)).toEqual([id]);
    await vi.waitFor(
      async () => {
        const moved = await Promise.all(indexSearch.mock.results.map((r) => r.value as Promise<number>));
        expect(moved.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
      },
      { timeout: 5_000, interval: 100 },
    );
    expect(await store.workflow.indexSearch(100)).toBe(0);
    expect((await store.workflow.listExecutions({ limit: 10, q: 'needle' })).map((r) => r.id)).toEqual([id]);
    indexSearch.mockRestore();
  });

  it('gives a reaction the files a file-I/O function wrote, as blob references', async () => {
    const blobs = await openBlobStore(store, { dir: join(dir, 'blobs') });
    const runtime = new FunctionRuntime(queue, {
      bundleDir: dir,
      capacity: 2,
      pollMs: 50,
      blobs,
      workDir: join(dir, 'work'),
    });
    await runtime.register('upper', basic.upper, { module: BASIC });
    const engine = new WorkflowEngine(queue, runtime, { pollMs: 50 });
    nodes.push({ engine, runtime });
    await runtime.start();
    const doc = (await blobs.putBuffer('quiet words')).ref;
    await engine.register(
      'w.files',
      rules<{ doc: string }, { asked: boolean }>({
        initial: () => ({ asked: false }),
        rules: [
          rule('shout', {
            match: (s) => !s.asked,
            action: (s, ctx) => {
              s.asked = true;
              ctx.invoke('upper', { doc: ctx.input.doc });
            },
            reaction: (_s, r, ctx) => ctx.complete({ output: r.output, files: r.files }),
          }),
        ],
      }),
    );
    await engine.start();
    const { id } = await engine.execute('w.files', { doc });
    const x = await engine.wait(id, 20_000);
    expect(x.status, JSON.stringify(x.error)).toBe('succeeded');
    const out = x.output as { output: unknown; files: Record<string, string> };
    expect(out.output).toEqual({ chars: 11 });
    expect(Object.keys(out.files).sort()).toEqual(['meta/length.txt', 'upper.txt']);
    expect((await blobs.getBuffer(out.files['upper.txt']!)).toString()).toBe('QUIET WORDS');
  });

  it('returns the existing execution for a repeated id', async () => {
    const engine = await node();
    await engine.register('media.encode', encodeRules);
    await engine.start();
    const first = await engine.execute('media.encode', { frames: 8 }, { id: 'fixed' });
    const again = await engine.execute('media.encode', { frames: 8 }, { id: 'fixed' });
    expect(first).toEqual({ id: 'fixed', created: true });
    expect(again).toEqual({ id: 'fixed', created: false });
    expect((await engine.wait('fixed')).status).toBe('succeeded');
    // Once it finished and left memory, the store's row is what answers.
    expect(await engine.execute('media.encode', { frames: 8 }, { id: 'fixed' })).toEqual({
      id: 'fixed',
      created: false,
    });
  });
});
