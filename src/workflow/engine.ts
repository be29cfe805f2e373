import { randomUUID } from 'node:crypto';
import { CosmosError } from '../errors.js';
import { retryDelay } from '../functions/backoff.js';
import type { DirectResult, FunctionRuntime } from '../functions/runtime.js';
import { Batcher } from '../queue/batcher.js';
import { Backoff, pause } from '../queue/backoff.js';
import type { Queue } from '../queue/queue.js';
import type { ExecutionRow, StepOutcome, StepWrite } from '../store/store.js';
import type { Clock, EnqueueInput, LeasedMessage } from '../types.js';
import type { Workflow, WorkflowFailure } from './define.js';
import { newExecution, step } from './evaluate.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { searchText } from './search-text.js';
import { EVENT_DELIVERIES, EVENTS_QUEUE, eventOf, type EventMessage, type ReplyMessage } from './events.js';
import type { Execution, ExecutionEvent, ParentLink, TraceEvent } from './execution.js';
import { LiveExecution, batchIsEmpty, emptyBatch, type Batch } from './live.js';
import { WorkflowRegistry, type RegisteredWorkflow } from './registry.js';

export interface WorkflowEngineOptions {
  /** Lease of event messages and of invocations this node runs itself (default 30 s). */
  leaseMs?: number;
  /** Longest wait for events when nothing wakes the engine (default 1 s). */
  pollMs?: number;
  /** Events applied concurrently (default 256). */
  concurrency?: number;
  /** Run invocations on this node's function runtime at once when it has room (default true). */
  direct?: boolean;
  /** Longest a step waits to share a commit with the steps of local invocations still running (default 10 ms). */
  holdMs?: number;
  /**
   * Look for executions whose owner stopped renewing, and move search rows into the index, on this engine's
   * own timers (default true). A cluster node turns it off and runs `recoverLapsed` and `indexSearch` as
   * duties instead, each on one node at a time.
   */
  sweep?: boolean;
  /**
   * Decides a `ctx.call(service, operation, input)`: the workflow to start and its input, or the failure
   * the calling rule gets instead (the API layer checks `calls` and the operation's input schema here).
   * Without it, `service.operation` names a registered workflow.
   */
  callPolicy?: CallPolicy;
  clock?: Clock;
  /** Where the engine reports trouble and finished executions, with their ids (default: warnings and up). */
  logger?: Logger;
}

export type CallPolicy = (
  from: { executionId: string; workflow: string },
  service: string,
  operation: string,
  input: unknown,
) => { workflow: string; input: unknown } | { error: WorkflowFailure };

export interface RegisterOptions {
  /** Prefix of the function names the workflow's rules invoke (see RegisteredWorkflow.functions). */
  functions?: string;
}

export interface ExecuteOptions {
  /** Default: a random UUID. Starting an id that exists returns it (created: false). */
  id?: string;
  priority?: number;
}

/**
 * The workflow layer's engine on one node (SPEC §4). Events reach executions through one exclusive queue;
 * each step is the pure `step()` and commits, with its outbox and trace, in one transaction; invocations
 * run on this node's function runtime directly when it has room, and through the queue otherwise.
 */
export class WorkflowEngine {
  readonly registry = new WorkflowRegistry();
  private readonly live = new Map<string, LiveExecution>();
  private readonly loading = new Map<string, Promise<LiveExecution | undefined>>();
  private readonly finishListeners: ((x: Execution) => void)[] = [];
  private readonly commitListeners: ((x: Execution) => void)[] = [];
  private readonly log: Logger;
  private readonly commits: Batcher<StepWrite, StepOutcome>;
  private readonly o: Required<Omit<WorkflowEngineOptions, 'clock' | 'callPolicy' | 'logger'>>;
  private readonly callPolicy: CallPolicy | undefined;
  private readonly clock: Clock;
  private running = false;
  /** This engine as an owner of executions whose invocations it runs itself. */
  private readonly token = randomUUID();
  private abort = new AbortController();
  private loop: Promise<void> | undefined;
  private keeper: NodeJS.Timeout | undefined;
  private indexer: NodeJS.Timeout | undefined;
  private inHand = 0;
  private readonly roomWaiters: (() => void)[] = [];

  constructor(
    private readonly queue: Queue,
    private readonly runtime?: FunctionRuntime,
    options: WorkflowEngineOptions = {},
  ) {
    this.o = {
      leaseMs: options.leaseMs ?? 30_000,
      pollMs: options.pollMs ?? 1_000,
      concurrency: options.concurrency ?? 256,
      direct: options.direct ?? true,
      holdMs: options.holdMs ?? 10,
      sweep: options.sweep ?? true,
    };
    this.clock = options.clock ?? Date.now;
    this.log = options.logger ?? createLogger('warn');
    this.callPolicy = options.callPolicy;
    const store = queue.store.workflow;
    // Two commits at a time (the PostgreSQL store holds two connections for them); more steps wait and share.
    this.commits = new Batcher((steps) => store.commitSteps(steps, this.clock()), 500, 2);
  }

  /** Registers a version of a workflow; open executions that opted in move to it and are evaluated again. */
  async register<I, S>(
    name: string,
    workflow: Workflow<I, S>,
    options: RegisterOptions = {},
  ): Promise<RegisteredWorkflow> {
    const { entry, added } = this.registry.add(name, workflow as unknown as Workflow, options.functions);
    if (added && entry.workflow.reevaluateOnUpgrade && this.running) await this.upgradeOpen(entry);
    return entry;
  }

  onFinished(listener: (x: Execution) => void): void {
    this.finishListeners.push(listener);
  }

  /** Every step this node commits (the UI's live updates); listeners must be cheap, they run on the hot path. */
  onCommitted(listener: (x: Execution) => void): void {
    this.commitListeners.push(listener);
  }

  /**
   * Sets up the events queue. `start` does it; a node that records executions without applying their events
   * (API only) calls it, so whichever node creates the queue first creates it right.
   */
  async prepare(): Promise<void> {
    await this.queue.configure(EVENTS_QUEUE, { exclusive: true, maxAttempts: EVENT_DELIVERIES });
  }

  async start(): Promise<void> {
    if (this.running) return;
    await this.prepare();
    this.running = true;
    this.abort = new AbortController();
    for (const name of this.registry.names()) {
      const entry = this.registry.get(name)!;
      if (entry.workflow.reevaluateOnUpgrade) await this.upgradeOpen(entry);
    }
    this.loop = this.consume().catch((e: unknown) => {
      if (this.running) this.log.error({ err: e }, 'workflow engine: event loop stopped');
    });
    this.keeper = setInterval(
      () => {
        void this.keepOwnership();
        if (this.o.sweep) void this.recoverLapsed().catch(() => undefined);
      },
      Math.max(100, this.o.leaseMs / 3),
    );
    this.keeper.unref();
    if (this.o.sweep) {
      this.indexer = setInterval(() => void this.indexSearch().catch(() => undefined), SEARCH_INDEX_EVERY_MS);
      this.indexer.unref();
    }
  }

  /** Stops taking events, lets commits under way land; invocations running here are given back to the queue. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.abort.abort();
    for (const w of this.roomWaiters.splice(0)) w();
    await this.loop;
    if (this.keeper) clearInterval(this.keeper);
    if (this.indexer) clearInterval(this.indexer);
    // Invocations running here go back to the queue, so the next node to start takes them at once.
    for (const l of this.live.values())
      if (l.directs.size > 0) {
        for (const d of l.directs.values()) d.abort();
        l.directs.clear();
        this.toQueue(l);
        this.flush(l);
      }
    await Promise.allSettled([...this.live.values()].map((l) => l.durable()));
    this.live.clear();
    await this.commits.idle();
  }

  /** Starts an execution; resolves once its first step (and the requests it made) is durable. */
  async execute(
    name: string,
    input: unknown,
    options: ExecuteOptions = {},
  ): Promise<{ id: string; created: boolean }> {
    const reg = this.registry.get(name);
    if (!reg)
      throw new CosmosError('workflow_not_found', `no workflow "${name}" is registered`, { workflow: name });
    const id = options.id ?? randomUUID();
    const now = this.clock();
    // An id that exists already loses at commit (the insert conflicts): no read first.
    if (this.live.has(id)) return { id, created: false };
    const doc = newExecution({
      id,
      workflow: name,
      version: reg.version,
      input,
      priority: options.priority ?? now,
      now,
    });
    const l = new LiveExecution(doc, 0);
    this.live.set(id, l);
    this.apply(l, { kind: 'start' });
    try {
      await l.durable();
    } catch (e) {
      if (e instanceof StartConflict) return { id, created: false };
      throw e;
    }
    return { id, created: true };
  }

  /** Sends a signal; it is applied by the execution's evaluator like any other event. */
  async signal(id: string, name: string, payload?: unknown): Promise<void> {
    const x = await this.get(id);
    if (!x) throw new CosmosError('execution_not_found', `no execution "${id}"`, { id });
    if (x.status !== 'running')
      throw new CosmosError('execution_finished', `execution ${id} is ${x.status}`, { id, status: x.status });
    const wf = this.registry.get(x.workflow, x.version)?.workflow;
    if (wf && !(name in wf.signals))
      throw new CosmosError('workflow_signal_unknown', `workflow ${x.workflow} has no signal "${name}"`, {
        signal: name,
        signals: Object.keys(wf.signals),
      });
    await this.send({ x: id, e: { kind: 'signal', name, payload } }, x.priority);
  }

  /** Cancels an execution: its queued invocations are canceled, running ones told to stop, children canceled. */
  async cancel(id: string, reason = 'canceled'): Promise<void> {
    const x = await this.get(id);
    if (!x) throw new CosmosError('execution_not_found', `no execution "${id}"`, { id });
    if (x.status !== 'running') return;
    await this.send({ x: id, e: { kind: 'cancel', reason } }, x.priority);
  }

  /** The execution as committed. */
  async get(id: string): Promise<Execution | undefined> {
    const [row] = await this.queue.store.workflow.getExecutions([id]);
    return row && fromRow(row);
  }

  async trace(id: string): Promise<TraceEvent[]> {
    const rows = await this.queue.store.workflow.trace(id);
    return rows.flatMap((r) => JSON.parse(r.events) as TraceEvent[]);
  }

  /** Resolves with the execution once it has finished (committed), or rejects after `timeoutMs`. */
  async wait(id: string, timeoutMs = 60_000): Promise<Execution> {
    const deadline = this.clock() + timeoutMs;
    let wake: (() => void) | undefined;
    const listener = (x: Execution): void => {
      if (x.id === id) wake?.();
    };
    this.finishListeners.push(listener);
    try {
      for (;;) {
        const x = await this.get(id);
        if (!x) throw new CosmosError('execution_not_found', `no execution "${id}"`, { id });
        if (x.status !== 'running') return x;
        const left = deadline - this.clock();
        if (left <= 0)
          throw new CosmosError(
            'execution_wait_timeout',
            `execution ${id} did not finish within ${timeoutMs} ms`,
            {
              id,
            },
          );
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, Math.min(left, this.o.pollMs)).unref();
        });
      }
    } finally {
      this.finishListeners.splice(this.finishListeners.indexOf(listener), 1);
    }
  }

  // ---- events from the queue -------------------------------------------------------------------------

  private async consume(): Promise<void> {
    const signal = this.abort.signal;
    const backoff = new Backoff();
    while (this.running) {
      const room = this.o.concurrency - this.inHand;
      if (room <= 0) {
        await new Promise<void>((r) => this.roomWaiters.push(r));
        continue;
      }
      let msgs: LeasedMessage<EventMessage | ReplyMessage>[];
      try {
        msgs = await this.queue.dequeue<EventMessage | ReplyMessage>({
          queue: EVENTS_QUEUE,
          max: Math.min(room, 500),
          leaseMs: this.o.leaseMs,
        });
        if (msgs.length === 0)
          await this.queue.waitForWork(EVENTS_QUEUE, { timeoutMs: this.o.pollMs, signal });
        if (backoff.failures > 0) this.log.info('workflow engine: the store answers again');
        backoff.reset();
      } catch (error) {
        // The database restarting or failing over: keep the loop, wait longer each time, and start again.
        if (backoff.failures === 0)
          this.log.warn({ err: error }, 'workflow engine: cannot fetch events; retrying with backoff');
        await pause(backoff.next(), signal);
        continue;
      }
      if (msgs.length === 0) continue;
      for (const m of msgs) {
        this.inHand++;
        void this.onMessage(m)
          .catch((e: unknown) => this.eventFailed(m, e))
          .finally(() => {
            this.inHand--;
            for (const w of this.roomWaiters.splice(0)) w();
          });
      }
    }
  }

  private async onMessage(m: LeasedMessage<EventMessage | ReplyMessage>): Promise<void> {
    const { x, event } = eventOf(m.payload);
    const create = 'create' in m.payload ? m.payload.create : undefined;
    // A copy this node already held (or was already reading) may be behind the store; one read for this
    // message, after its lease, holds every commit that made a request this event could answer.
    const held = this.live.has(x) || this.loading.has(x);
    const l = await this.liveFor(x, create);
    if (!l) {
      await this.queue.complete(m.lease);
      return;
    }
    if (event.kind === 'recover') {
      // Local invocations this node does not run go to the queue; those it runs stay, and the commit (made
      // even when nothing moved) renews this node's ownership of them and moves the row past the sequence
      // the sweep keyed this event on, so a later lapse is recovered again.
      const orphans = Object.entries(l.doc.outstanding)
        .filter(([pid, o]) => o.local && !l.directs.has(pid))
        .map(([pid]) => pid);
      this.toQueue(l, orphans);
      l.batch.acks.push(m);
      this.flush(l);
      await l.durable().catch(() => undefined);
      return;
    }
    if (!this.registry.get(l.doc.workflow, l.doc.version)) {
      // A version this node does not run: leave the event to a node that does (its lease will lapse).
      this.log.warn(
        { ...idsOf(l.doc), version: l.doc.version },
        'workflow version not registered on this node; leaving the event to a node that runs it',
      );
      this.evict(l);
      return;
    }
    if (event.kind === 'signal' && (await this.queue.store.workflow.signalApplied(x, m.id))) {
      await this.queue.complete(m.lease);
      this.release(l);
      return;
    }
    if (event.kind === 'reevaluate') {
      const to = (m.payload as EventMessage).to;
      if (to === undefined || l.doc.version === to || !this.registry.get(l.doc.workflow, to)) {
        await this.queue.complete(m.lease);
        this.release(l);
        return;
      }
      l.doc = { ...l.doc, version: to };
    }
    const done = l.durable();
    // A commit under way that fails is handled where it fails; this wait only orders the acknowledgement.
    done.catch(() => undefined);
    const signal = event.kind === 'signal' ? m.id : undefined;
    if (!this.apply(l, event, m, signal)) await this.unchanged(l, m, event, signal, held, done);
    else await l.durable().catch(() => undefined);
  }

  /**
   * An event that changed nothing (a duplicate, or an answer to a request the execution has withdrawn) is
   * dropped only on the word of a copy known to be the newest: one read for it, or a finished one (nothing
   * moves a finished execution). A copy this node held may be behind the store, and lack the very request
   * the event answers: then the event rides the next commit, whose sequence check proves the copy current,
   * and if it was not, the conflict re-applies the event to the store's copy.
   */
  private async unchanged(
    l: LiveExecution,
    m: LeasedMessage<unknown>,
    event: ExecutionEvent,
    signal: number | undefined,
    held: boolean,
    done: Promise<void>,
  ): Promise<void> {
    if (held && l.doc.status === 'running') {
      if (this.live.get(l.doc.id) !== l) return this.handleAgain(m);
      l.batch.events.push({ event, ack: m, ...(signal !== undefined && { signal }) });
      l.batch.acks.push(m);
      this.flush(l);
      await l.durable().catch(() => undefined);
      return;
    }
    // A copy ahead of the store whose commit then failed is no word at all: read the store's.
    const durable = await done.then(
      () => true,
      () => false,
    );
    if (!durable) return this.handleAgain(m);
    await this.queue.complete(m.lease);
    this.release(l);
  }

  /** Forgets an execution this node is done with: a copy kept idle would go stale as other nodes move it. */
  private release(l: LiveExecution): void {
    if (l.idle) this.evict(l);
  }

  /** The live execution, read from the store if this node is not moving it; created for a `create` event. */
  private liveFor(id: string, create?: EventMessage['create']): Promise<LiveExecution | undefined> {
    const l = this.live.get(id);
    if (l) return Promise.resolve(l);
    let p = this.loading.get(id);
    if (!p) {
      p = this.queue.store.workflow.getExecutions([id]).then(([row]) => {
        this.loading.delete(id);
        const again = this.live.get(id);
        if (again) return again;
        let x: LiveExecution | undefined;
        if (row) x = new LiveExecution(fromRow(row), row.seq);
        else if (create && this.registry.get(create.workflow))
          x = new LiveExecution(
            newExecution({
              id,
              workflow: create.workflow,
              version: this.registry.get(create.workflow)!.version,
              input: create.input,
              priority: create.priority,
              ...(create.parent && { parent: create.parent }),
              now: this.clock(),
            }),
            0,
          );
        if (x) this.live.set(id, x);
        return x;
      });
      this.loading.set(id, p);
    }
    return p;
  }

  // ---- steps ----------------------------------------------------------------------------------------------

  /** Applies one event to the newest document; false when it changed nothing. Commits follow on their own. */
  private apply(
    l: LiveExecution,
    event: ExecutionEvent,
    ack?: LeasedMessage<unknown>,
    signal?: number,
  ): boolean {
    const reg = this.registry.get(l.doc.workflow, l.doc.version);
    const now = this.clock();
    if (!reg) return false;
    const r = step(reg.workflow, l.doc, event, now);
    if (!r.changed) return false;
    const before = l.doc;
    l.doc = r.execution;
    const b = l.batch;
    b.events.push({ event, ...(ack && { ack }), ...(signal !== undefined && { signal }) });
    if (ack) b.acks.push(ack);
    if (signal !== undefined) b.signals.push(signal);
    for (const t of r.trace) b.trace.push({ ...t, step: l.doc.seq });
    const x = l.doc;
    for (const e of r.effects) {
      if (e.kind === 'invoke') this.invoke(l, e.pid, this.fnOf(x, e.fn), e.input, e.priority, e.key);
      else if (e.kind === 'timer')
        b.enqueue.push(
          this.event(
            { x: x.id, e: { kind: 'result', pid: e.pid, ok: true, output: { firedAt: e.due } } },
            x.priority,
            { delayMs: Math.max(0, e.due - now), idempotencyKey: `${x.id}:${e.pid}` },
          ),
        );
      else if (e.kind === 'call') {
        const decided = this.decideCall(x, e.service, e.operation, e.input);
        if ('error' in decided) {
          queueMicrotask(() =>
            this.apply(l, { kind: 'result', pid: e.pid, ok: false, error: decided.error }),
          );
          continue;
        }
        const target = decided.workflow;
        b.enqueue.push(
          this.event(
            {
              x: e.childId,
              e: { kind: 'start' },
              create: {
                workflow: target,
                input: decided.input,
                priority: e.priority,
                parent: { id: x.id, pid: e.pid },
              },
            },
            e.priority,
            { idempotencyKey: `start:${e.childId}` },
          ),
        );
      } else {
        for (const w of e.requests) {
          if (w.kind === 'call')
            b.enqueue.push(
              this.event(
                { x: `${x.id}.${w.pid}`, e: { kind: 'cancel', reason: 'its parent finished' } },
                x.priority,
              ),
            );
          else {
            const queue =
              w.kind === 'timer' ? EVENTS_QUEUE : this.runtime?.registry.get(this.fnOf(x, w.target))?.queue;
            const direct = l.directs.get(w.pid);
            if (direct) {
              l.directs.delete(w.pid);
              direct.abort();
            } else if (queue) b.withdraw.push({ queue, key: `${x.id}:${w.pid}` });
          }
        }
      }
    }
    if (before.status === 'running' && x.status !== 'running' && x.parent)
      b.enqueue.push(this.toParent(x, x.parent));
    this.flush(l);
    return true;
  }

  private toParent(x: Execution, parent: ParentLink): EnqueueInput {
    const e: ExecutionEvent =
      x.status === 'succeeded'
        ? { kind: 'result', pid: parent.pid, ok: true, output: x.output }
        : {
            kind: 'result',
            pid: parent.pid,
            ok: false,
            error: x.error ?? { code: 'workflow_failed', message: x.status },
          };
    return this.event({ x: parent.id, e }, x.priority, { idempotencyKey: `result:${x.id}` });
  }

  private event(payload: EventMessage, priority: number, extra: Partial<EnqueueInput> = {}): EnqueueInput {
    return { queue: EVENTS_QUEUE, payload, priority, exclusivityKey: payload.x, ...extra };
  }

  /**
   * An invocation. With room on this node it runs here at once as a local invocation: no queue message,
   * recorded in the execution (its input kept with the request) and owned by this node until answered. If
   * this node dies, another takes its lapsed executions' local invocations back to the queue (recover).
   * Otherwise it is queued for any node.
   */
  private invoke(
    l: LiveExecution,
    pid: string,
    fn: string,
    input: unknown,
    priority: number,
    key?: string,
  ): void {
    if (!this.runtime?.registry.get(fn)) {
      queueMicrotask(() =>
        this.apply(l, {
          kind: 'result',
          pid,
          ok: false,
          error: { code: 'function_not_found', message: `function "${fn}" is not registered on this node` },
        }),
      );
      return;
    }
    if (!this.o.direct || !this.running || !this.runtime.canRunDirect(fn)) {
      l.batch.enqueue.push(this.invocation(l.doc.id, pid, fn, input, priority, key)!);
      return;
    }
    const o = l.doc.outstanding[pid]!;
    l.doc.outstanding[pid] = { ...o, local: { input, priority } };
    const run = this.runtime.runDirect(fn, input, {
      priority,
      ...(key !== undefined && { key }),
      invocationId: `${l.doc.id}:${pid}`,
    });
    l.directs.set(pid, { abort: run.abort });
    void run.result.then((r) => this.onDirect(l, pid, r));
  }

  /** The runtime's name of a function a rule invoked: scoped to the workflow's service, if it has one. */
  private fnOf(x: Execution, fn: string): string {
    const scope = this.registry.get(x.workflow, x.version)?.functions;
    return scope === undefined ? fn : `${scope}.${fn}`;
  }

  private decideCall(
    x: Execution,
    service: string,
    operation: string,
    input: unknown,
  ): { workflow: string; input: unknown } | { error: WorkflowFailure } {
    if (this.callPolicy)
      return this.callPolicy({ executionId: x.id, workflow: x.workflow }, service, operation, input);
    const workflow = `${service}.${operation}`;
    return this.registry.get(workflow)
      ? { workflow, input }
      : { error: { code: 'workflow_not_found', message: `no workflow "${workflow}" is registered to call` } };
  }

  /** An invocation message as any node's function runtime takes it, answering to the events queue. */
  private invocation(
    x: string,
    pid: string,
    fn: string,
    input: unknown,
    priority: number,
    key: string | undefined,
    extra: Partial<EnqueueInput> = {},
  ): EnqueueInput | undefined {
    const msg = this.runtime?.invocationMessage(fn, input, {
      ...(key !== undefined && { key }),
      replyTo: EVENTS_QUEUE,
      replyKey: x,
      tag: { x, pid },
    });
    if (!msg) return undefined;
    return {
      queue: msg.queue,
      payload: msg.payload,
      priority,
      idempotencyKey: `${x}:${pid}`,
      maxAttempts: msg.maxAttempts,
      ...extra,
    };
  }

  /**
   * A local invocation's attempt finished. An answer is applied at once; a retryable failure sends the
   * invocation to the queue with its first attempt spent, after its backoff.
   */
  private onDirect(l: LiveExecution, pid: string, r: DirectResult): void {
    if (!l.directs.delete(pid) || this.live.get(l.doc.id) !== l) return;
    const o = l.doc.outstanding[pid];
    if (!o) return;
    const fn = this.fnOf(l.doc, o.target);
    const attempts = this.runtime!.registry.get(fn)?.def.options.attempts ?? 1;
    if (!r.ok)
      this.log.warn(
        {
          ...idsOf(l.doc),
          function: fn,
          // Not `pid`: that is pino's process id.
          requestId: pid,
          attempt: 1,
          class: r.error.failure,
          err: { code: r.error.code, message: r.error.message },
        },
        'local invocation attempt failed',
      );
    if (!r.ok && r.error.retryable && attempts > 1) {
      this.toQueue(l, [pid], { maxAttempts: attempts - 1, delayMs: this.retryDelayOf(fn) });
      this.flush(l);
      return;
    }
    this.apply(
      l,
      r.ok
        ? { kind: 'result', pid, ok: true, output: r.output, ...(r.run && { run: r.run }) }
        : {
            kind: 'result',
            pid,
            ok: false,
            error: {
              code: r.error.code,
              message: r.error.message,
              ...(r.error.details && { details: r.error.details }),
            },
            ...(r.run && { run: r.run }),
          },
    );
  }

  /** Local invocations (all, or those of `pids`) become queue messages in the next commit. */
  private toQueue(l: LiveExecution, pids?: string[], extra: Partial<EnqueueInput> = {}): void {
    const x = l.doc;
    const outstanding = { ...x.outstanding };
    for (const [pid, o] of Object.entries(x.outstanding)) {
      if (!o.local || (pids && !pids.includes(pid))) continue;
      const { local, ...rest } = o;
      outstanding[pid] = rest;
      const msg = this.invocation(
        x.id,
        pid,
        this.fnOf(x, o.target),
        local.input,
        local.priority,
        o.key,
        extra,
      );
      if (msg) l.batch.enqueue.push(msg);
    }
    l.doc = { ...x, outstanding };
  }

  /** The wait before the second attempt of an invocation whose first, local attempt failed. */
  private retryDelayOf(fn: string): number {
    const reg = this.runtime?.registry.get(fn);
    return reg ? retryDelay(reg.def.options.backoff, 2) : 0;
  }

  /** Commits the execution's batch unless a commit is under way (then it goes when that one lands). */
  private flush(l: LiveExecution): void {
    if (l.committing) return;
    if (batchIsEmpty(l.batch)) {
      this.settleIdle(l);
      return;
    }
    if (this.mayWait(l)) return;
    if (l.holdTimer) {
      clearTimeout(l.holdTimer);
      l.holdTimer = undefined;
    }
    l.committing = true;
    const b = l.batch;
    l.batch = emptyBatch();
    l.inflight = b;
    void this.commit(l, b).then(
      () => {
        l.committing = false;
        l.inflight = undefined;
        this.flush(l);
      },
      (e: unknown) => {
        l.committing = false;
        l.inflight = undefined;
        for (const w of b.waiters) w.reject(e);
        this.log.error(
          { err: e, ...idsOf(l.doc) },
          'commit of a step failed; the execution resumes from the store',
        );
        for (const d of l.directs.values()) d.abort();
        this.evict(l);
      },
    );
  }

  /**
   * Whether the batch may wait, at most `holdMs`, for the local invocations still running, so that a chain
   * of quick steps lands in one commit. Only while nothing else depends on it: no event to acknowledge, no
   * message to send, no signal. A crash meanwhile loses nothing anyone was told about: the store still
   * holds the last commit, whose owner's local invocations are recovered and run again (functions run at
   * least once, as always), and a start not yet committed was not acknowledged to its caller, who waits
   * for this commit. With a chain that finishes in time, start and result share one commit.
   */
  private mayWait(l: LiveExecution): boolean {
    const b = l.batch;
    if (
      !this.running ||
      l.directs.size === 0 ||
      l.doc.status !== 'running' ||
      b.acks.length > 0 ||
      b.enqueue.length > 0 ||
      b.signals.length > 0 ||
      b.withdraw.length > 0
    )
      return false;
    l.holdTimer ??= setTimeout(() => {
      l.holdTimer = undefined;
      if (this.live.get(l.doc.id) !== l) return;
      l.holdExpired = true;
      this.flush(l);
      l.holdExpired = false;
    }, this.o.holdMs);
    return !l.holdExpired;
  }

  private async commit(l: LiveExecution, b: Batch): Promise<void> {
    const x = l.doc;
    const enqueue = await this.queue.outbox(b.enqueue);
    const now = this.clock();
    // Local invocations running here make this node the execution's owner until it renews or answers. Those
    // of another node (alive, or dead and not yet recovered) leave the row's owner as it is.
    const locals = Object.values(x.outstanding).some((o) => o.local !== undefined);
    const mine = locals && l.directs.size > 0;
    const row: ExecutionRow = {
      id: x.id,
      workflow: x.workflow,
      version: x.version,
      status: x.status,
      priority: x.priority,
      parentId: x.parent?.id ?? null,
      seq: l.committed + 1,
      doc: JSON.stringify(x),
      createdAt: x.createdAt,
      updatedAt: x.updatedAt,
      finishedAt: x.finishedAt ?? null,
      // Without an owner in the row (never expected) the locals are this node's to recover: lapsed at once.
      owner: locals ? this.token : null,
      ownerUntil: mine ? now + this.o.leaseMs : locals ? now : null,
    };
    const search = searchText(x, l.committed === 0);
    const out = await this.commits.add({
      row,
      ...(locals && !mine && { keepOwner: true }),
      ...(search !== undefined && { search }),
      trace: b.trace.length > 0 ? JSON.stringify(b.trace) : null,
      enqueue,
      signals: b.signals,
    });
    if (!out.ok) return this.conflict(l, b);
    l.committed++;
    // A lost acknowledgement only means a redelivery, which finds the event applied and changes nothing.
    for (const a of b.acks) this.queue.complete(a.lease).catch(() => undefined);
    if (b.withdraw.length > 0)
      this.withdraw(b.withdraw).catch((e: unknown) =>
        this.log.warn(
          { err: e, ...idsOf(x) },
          'withdrawing invocations failed; they run and their results are dropped',
        ),
      );
    for (const w of b.waiters) w.resolve();
    for (const f of this.commitListeners) f(x);
    if (x.status !== 'running') for (const f of this.finishListeners) f(x);
  }

  /** Another evaluator moved the execution first: start over from the store and re-apply these events. */
  private async conflict(l: LiveExecution, b: Batch): Promise<void> {
    this.evict(l);
    for (const d of l.directs.values()) d.abort();
    if (l.committed === 0 && b.events[0]?.event.kind === 'start') {
      for (const w of [...b.waiters, ...l.batch.waiters]) w.reject(new StartConflict());
      // The execution exists already: messages applied to this stillborn copy are handled again from the
      // store (a redelivered create event then finds it started and changes nothing).
      for (const a of new Set([...b.acks, ...l.batch.acks])) this.handleAgain(a);
      return;
    }
    const fresh = await this.liveFor(l.doc.id);
    const pending = [...b.events, ...l.batch.events];
    // Messages acknowledged by the lost commit without an event of their own (recover) are handled anew.
    const replayed = new Set(pending.map((e) => e.ack));
    const again = [...b.acks, ...l.batch.acks].filter((a) => !replayed.has(a));
    if (!fresh) return;
    for (const e of pending)
      if (!this.apply(fresh, e.event, e.ack, e.signal) && e.ack)
        this.queue.complete(e.ack.lease).catch(() => undefined);
    for (const a of again) this.handleAgain(a);
    const waiters = [...b.waiters, ...l.batch.waiters];
    void fresh.durable().then(
      () => waiters.forEach((w) => w.resolve()),
      (e: unknown) => waiters.forEach((w) => w.reject(e)),
    );
  }

  /** A message whose commit was lost, handled from the start against the store's copy. */
  private handleAgain(m: LeasedMessage<unknown>): void {
    void this.onMessage(m as LeasedMessage<EventMessage | ReplyMessage>).catch((e: unknown) =>
      this.eventFailed(m, e),
    );
  }

  private eventFailed(m: LeasedMessage<unknown>, e: unknown): void {
    const { x } = eventOf(m.payload as EventMessage | ReplyMessage);
    this.log.error(
      { err: e, executionId: x, traceId: traceIdOf(x), messageId: m.id },
      'applying an event failed',
    );
  }

  private settleIdle(l: LiveExecution): void {
    for (const w of l.batch.waiters.splice(0)) w.resolve();
    if (l.idle) this.evict(l);
  }

  private evict(l: LiveExecution): void {
    if (this.live.get(l.doc.id) === l) this.live.delete(l.doc.id);
  }

  private async withdraw(items: Batch['withdraw']): Promise<void> {
    const byQueue = new Map<string, string[]>();
    for (const w of items) byQueue.set(w.queue, [...(byQueue.get(w.queue) ?? []), w.key]);
    for (const [queue, keys] of byQueue) {
      const ids = await this.queue.store.workflow.messageIds(queue, keys);
      if (ids.length === 0) continue;
      await this.queue.cancel(ids);
      for (const id of ids) this.runtime?.cancelInvocation(id);
    }
  }

  private async upgradeOpen(entry: RegisteredWorkflow): Promise<void> {
    const open = await this.queue.store.workflow.openOnOtherVersions(entry.name, entry.version);
    if (open.length === 0) return;
    await this.queue.enqueueMany(
      open.map((o) =>
        this.event({ x: o.id, e: { kind: 'reevaluate' }, to: entry.version }, this.clock(), {
          idempotencyKey: `upgrade:${o.id}:${entry.version}`,
        }),
      ),
    );
  }

  private async send(payload: EventMessage, priority: number): Promise<void> {
    await this.queue.enqueueMany([this.event(payload, priority)]);
  }

  /** Executions with local invocations stay owned by this node: one renewal for all of them per round. */
  private async keepOwnership(): Promise<void> {
    const ids = [...this.live.values()].filter((l) => l.directs.size > 0).map((l) => l.doc.id);
    if (ids.length > 0)
      await this.queue.store.workflow
        .renewOwnership(ids, this.token, this.clock() + this.o.leaseMs)
        .catch(() => undefined);
  }

  /**
   * Moves the search rows that commits appended since the last round into the search index, in batches,
   * until the backlog is empty or `maxBatches` moved (a round stays short; the next picks up the rest).
   */
  async indexSearch(batch = 2_000, maxBatches = 25): Promise<number> {
    let moved = 0;
    for (let i = 0; i < maxBatches; i++) {
      const n = await this.queue.store.workflow.indexSearch(batch);
      moved += n;
      if (n < batch) break;
    }
    return moved;
  }

  /**
   * Executions whose owner stopped renewing get a `recover` event: their local invocations go to the queue.
   * This node's own rows count too: it renews only the executions whose invocations it runs.
   */
  async recoverLapsed(): Promise<number> {
    const ids = await this.queue.store.workflow.lapsedOwnership(this.clock(), 100);
    if (ids.length === 0) return 0;
    const rows = await this.queue.store.workflow.getExecutions(ids);
    await this.queue.enqueueMany(
      rows.map((r) =>
        this.event({ x: r.id, e: { kind: 'recover' } }, r.priority, {
          idempotencyKey: `recover:${r.id}:${r.seq}`,
        }),
      ),
    );
    return rows.length;
  }
}

/** How often an engine that sweeps moves search rows into the index (a cluster node: its duty's period). */
export const SEARCH_INDEX_EVERY_MS = 1_000;

/** The start of an execution lost to one that already had its id. */
class StartConflict extends Error {}

function fromRow(row: ExecutionRow): Execution {
  return JSON.parse(row.doc) as Execution;
}

/** A request's trace id is its root execution's id: child ids extend their parent's (see childId). */
export function traceIdOf(executionId: string): string {
  const dot = executionId.indexOf('.');
  return dot < 0 ? executionId : executionId.slice(0, dot);
}

/** The ids a log line about an execution carries. */
export function idsOf(x: Execution): { executionId: string; workflow: string; traceId: string } {
  return { executionId: x.id, workflow: x.workflow, traceId: traceIdOf(x.id) };
}
