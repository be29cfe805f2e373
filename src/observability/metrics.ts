import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PendingClass } from '../store/store.js';
import type { FunctionRuntime } from '../functions/runtime.js';
import type { Queue } from '../queue/queue.js';
import type { WorkflowStore } from '../store/store.js';
import type { Execution } from '../workflow/execution.js';

/** One value of a gauge and its labels. */
type Sample<L extends string> = [Partial<Record<L, string>>, number];

/**
 * A node's Prometheus metrics, in a registry of its own (two nodes in one process do not mix). Queue depth is
 * read from the store when scraped; the rest are counted as things happen.
 */
export class NodeMetrics {
  readonly registry = new Registry();
  private readonly finished: Counter<'workflow' | 'status'>;
  private readonly durations: Histogram<'workflow' | 'status'>;
  private readonly requests: Histogram<'method' | 'route' | 'code'>;

  constructor(
    queue: Queue,
    runtime?: Pick<FunctionRuntime, 'handlerCallCounts' | 'onRun' | 'slotUse' | 'registry'>,
    workflows?: Pick<WorkflowStore, 'countByStatus'>,
  ) {
    collectDefaultMetrics({ register: this.registry, prefix: 'cosmos_process_' });
    this.finished = new Counter({
      name: 'cosmos_executions_finished_total',
      help: 'Executions finished on this node, by workflow and status',
      labelNames: ['workflow', 'status'],
      registers: [this.registry],
    });
    this.durations = new Histogram({
      name: 'cosmos_execution_duration_seconds',
      help: 'From start to finish, of executions finished on this node',
      labelNames: ['workflow', 'status'],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 1800],
      registers: [this.registry],
    });
    this.requests = new Histogram({
      name: 'cosmos_http_request_duration_seconds',
      help: 'HTTP requests by route and status code',
      labelNames: ['method', 'route', 'code'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: [this.registry],
    });
    const calls = new Gauge({
      name: 'cosmos_function_handler_calls',
      help: 'Handler calls per function since the node started (a micro-batch is one call)',
      labelNames: ['function'],
      registers: [this.registry],
      collect() {
        calls.reset();
        for (const [fn, n] of Object.entries(runtime?.handlerCallCounts() ?? {}))
          calls.set({ function: fn }, n);
      },
    });
    const wait = new Histogram({
      name: 'cosmos_invocation_wait_seconds',
      help: 'From when an invocation could run until a worker took it, per function and pool',
      labelNames: ['function', 'pool'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600],
      registers: [this.registry],
    });
    const ran = new Histogram({
      name: 'cosmos_invocation_run_seconds',
      help: 'How long an attempt ran on its worker, per function and pool',
      labelNames: ['function', 'pool'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600],
      registers: [this.registry],
    });
    const failures = new Counter({
      name: 'cosmos_invocation_failures_total',
      help: 'Attempts that failed, per function and failure class (user, timeout, out_of_memory, worker_crash…)',
      labelNames: ['function', 'class'],
      registers: [this.registry],
    });
    const busy = new Counter({
      name: 'cosmos_worker_busy_seconds_total',
      help: 'Worker time spent running handlers, per pool: its rate over the node slots is the utilisation',
      labelNames: ['pool'],
      registers: [this.registry],
    });
    runtime?.onRun((o) => {
      // Invocations of one batch share one handler call: each takes its share of the call's time.
      busy.inc({ pool: o.pool }, (o.run.finishedAt - o.run.startedAt) / 1000 / Math.max(1, o.run.batch));
      const labels = { function: o.function, pool: o.pool };
      wait.observe(labels, o.waitMs / 1000);
      ran.observe(labels, (o.run.finishedAt - o.run.startedAt) / 1000);
      if (o.failure) failures.inc({ function: o.function, class: o.failure });
    });
    const pools = (): ReturnType<FunctionRuntime['slotUse']> =>
      runtime?.slotUse() ?? { capacity: 0, pools: [] };
    this.scraped(
      'cosmos_pool_slots',
      'Slots per pool: taken by running handler calls (running) and asked for by waiting ones (waiting)',
      ['pool', 'state'],
      () =>
        pools().pools.flatMap((p) => [
          [{ pool: p.pool, state: 'running' }, p.running],
          [{ pool: p.pool, state: 'waiting' }, p.waiting],
        ]),
    );
    this.scraped(
      'cosmos_worker_utilisation',
      "Share of the node's slots taken by running handler calls, per pool (0-1)",
      ['pool'],
      () => {
        const use = pools();
        return use.pools.map((p) => [{ pool: p.pool }, p.running / Math.max(1, use.capacity)]);
      },
    );
    this.scraped('cosmos_workers', 'Live workers (threads and processes) per pool', ['pool'], () =>
      pools().pools.map((p) => [{ pool: p.pool }, p.workers]),
    );
    this.scraped(
      'cosmos_executions',
      'Executions in the store by status (every node of the installation), read when scraped',
      ['status'],
      async () =>
        Object.entries((await workflows?.countByStatus()) ?? {}).map(([status, n]) => [{ status }, n]),
    );
    this.scraped(
      'cosmos_queue_messages',
      'Messages per queue and state, read from the store when scraped',
      ['queue', 'state'],
      async () => {
        const out: Sample<'queue' | 'state'>[] = [];
        for (const q of await queue.listQueues())
          for (const [state, n] of Object.entries(await queue.counts(q.name)))
            out.push([{ queue: q.name, state }, n]);
        return out;
      },
    );
    // Depth and age of what is ready to run, per queue, its pool (function queues) and priority class.
    const pendingByClass = async (): Promise<(PendingClass & { queue: string; pool: string })[]> => {
      const poolOf = new Map(runtime?.registry.list().map((r) => [r.queue, r.def.options.pool]) ?? []);
      const out: (PendingClass & { queue: string; pool: string })[] = [];
      for (const q of await queue.listQueues())
        for (const c of await queue.pendingByClass(q.name))
          out.push({ ...c, queue: q.name, pool: poolOf.get(q.name) ?? '' });
      return out;
    };
    this.scraped(
      'cosmos_queue_depth',
      'Messages ready to run per queue, pool (function queues) and priority class, read when scraped',
      ['queue', 'pool', 'class'],
      async () =>
        (await pendingByClass()).map((c) => [{ queue: c.queue, pool: c.pool, class: c.class }, c.n]),
    );
    this.scraped(
      'cosmos_queue_oldest_age_seconds',
      'How long the oldest ready message has waited, per queue, pool and priority class',
      ['queue', 'pool', 'class'],
      async () => {
        const now = Date.now();
        return (await pendingByClass()).map((c) => [
          { queue: c.queue, pool: c.pool, class: c.class },
          Math.max(0, now - c.oldest) / 1000,
        ]);
      },
    );
  }

  /** A gauge whose values are read when Prometheus scrapes, replacing the previous scrape's. */
  private scraped<L extends string>(
    name: string,
    help: string,
    labelNames: L[],
    read: () => Sample<L>[] | Promise<Sample<L>[]>,
  ): void {
    const gauge = new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [this.registry],
      async collect() {
        const samples = await read();
        gauge.reset();
        for (const [labels, value] of samples) gauge.set(labels, value);
      },
    });
  }

  executionFinished(x: Execution): void {
    this.finished.inc({ workflow: x.workflow, status: x.status });
    if (x.finishedAt !== undefined)
      this.durations.observe({ workflow: x.workflow, status: x.status }, (x.finishedAt - x.createdAt) / 1000);
  }

  request(method: string, route: string, code: number, seconds: number): void {
    this.requests.observe({ method, route, code: String(code) }, seconds);
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
