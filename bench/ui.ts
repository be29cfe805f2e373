import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StoreOptions } from '../src/config.js';
import { startNode } from '../src/node.js';
import { openStore } from '../src/store/open.js';
import { searchText } from '../src/workflow/search-text.js';
import type { StepWrite } from '../src/store/store.js';
import type { Execution, TraceEvent } from '../src/workflow/execution.js';
import { intOption, stringOptions } from './lib/args.js';
import { barChart } from './lib/chart.js';
import { Cleanup } from './lib/cleanup.js';
import { guardRun } from './lib/guard.js';
import { machineInfo } from './lib/machine.js';
import pg from 'pg';
import { databaseUrl, dropSchema, uniqueSchema, withClient } from './lib/pg.js';
import { Progress } from './lib/progress.js';
import { Report } from './lib/report.js';
import { summarize, type Summary } from './lib/stats.js';

const USAGE = `usage: npm run bench -- ui [options]
  --executions <n>   executions in the store (default 100000)
  --requests <n>     timed requests per API call (default 200)`;

const WORKFLOWS = ['catalog.ingest', 'encoder.encode', 'quality.measure', 'thumbnails.generate'];
const STATUSES = ['succeeded', 'succeeded', 'succeeded', 'failed', 'running', 'canceled'] as const;
/** A word only a few executions' documents hold: what a person searches for. */
const RARE_TITLE = 'zebra-crossing';
const RARE_EVERY = 5_000;

function parseSettings(argv: string[]): { executions: number; requests: number } {
  const values = stringOptions(argv, ['executions', 'requests'], USAGE);
  return {
    executions: intOption(values.executions, 100_000, 'executions'),
    requests: intOption(values.requests, 200, 'requests'),
  };
}

/** An execution as the media examples leave them: an input with a title and a source, a state, an output. */
function execution(i: number, t0: number): { step: StepWrite; id: string } {
  const id = randomUUID();
  const workflow = WORKFLOWS[i % WORKFLOWS.length]!;
  const status = STATUSES[i % STATUSES.length]!;
  const createdAt = t0 + i * 10;
  const title = i % RARE_EVERY === 7 ? `${RARE_TITLE} ${i}` : `title ${i % 977}`;
  const doc: Execution = {
    id,
    workflow,
    version: 'v1',
    status,
    input: { title, source: { sample: 'countdown', frames: 96, width: 320, height: 180 } },
    state: {
      asked: { encode: true, measure: true, record: status !== 'running' },
      quality: { '180p': { psnr: 34.1 } },
    },
    ...(status === 'succeeded' && { output: { title, entry: `sha256:${'ab'.repeat(32)}`, renditions: 3 } }),
    ...(status === 'failed' && {
      error: { code: 'function_failed', message: 'chunk 3 could not be decoded' },
    }),
    priority: createdAt,
    seq: 6,
    nextPid: 6,
    outstanding: {},
    createdAt,
    updatedAt: createdAt + 3_000,
    ...(status !== 'running' && { finishedAt: createdAt + 3_000 }),
  };
  const trace: TraceEvent[] = [
    { kind: 'started', at: createdAt },
    { kind: 'rule', at: createdAt, rule: 'encode', data: { requests: 1 } },
    {
      kind: 'reaction',
      at: createdAt + 1_200,
      rule: 'encode',
      data: { pid: 'p1', kind: 'call', target: 'encoder.encode', requestedAt: createdAt },
    },
    { kind: 'rule', at: createdAt + 1_200, rule: 'measure', data: { requests: 3 } },
    { kind: 'succeeded', at: createdAt + 3_000 },
  ];
  return {
    id,
    step: {
      row: {
        id,
        workflow,
        version: 'v1',
        status,
        priority: createdAt,
        parentId: null,
        seq: 1,
        doc: JSON.stringify(doc),
        createdAt,
        updatedAt: doc.updatedAt,
        finishedAt: doc.finishedAt ?? null,
        owner: null,
        ownerUntil: null,
      },
      trace: JSON.stringify(trace),
      enqueue: [],
      signals: [],
      search: searchText(doc, true)!,
    },
  };
}

async function fill(options: StoreOptions, n: number, progress: Progress): Promise<string[]> {
  const store = await openStore(options);
  const ids: string[] = [];
  try {
    const t0 = Date.now() - n * 10;
    for (let i = 0; i < n; i += 1_000) {
      const steps = [];
      for (let j = i; j < Math.min(n, i + 1_000); j++) {
        const x = execution(j, t0);
        ids.push(x.id);
        steps.push(x.step);
      }
      const out = await store.workflow.commitSteps(steps, Date.now());
      if (out.some((o) => !o.ok)) throw new Error('filling the store: a commit conflicted');
      if (i % 10_000 === 0) progress.update(`${i}/${n}`);
    }
    // As a node's search-index duty does within a second of the commits: the search rows go into the index.
    for (let moved = 1; moved > 0;) moved = await store.workflow.indexSearch(10_000);
  } finally {
    await store.close();
  }
  return ids;
}

async function timed(count: number, url: () => string | string[]): Promise<Summary> {
  const times: number[] = [];
  for (let i = 0; i < count + 10; i++) {
    const urls = url();
    const t0 = performance.now();
    const responses = await Promise.all((Array.isArray(urls) ? urls : [urls]).map((u) => fetch(u)));
    for (const r of responses) {
      if (r.status !== 200) throw new Error(`${r.url} answered ${r.status}: ${await r.text()}`);
      await r.arrayBuffer();
    }
    if (i >= 10) times.push(performance.now() - t0);
  }
  return summarize(times);
}

/**
 * What the web UI asks of the API, against a store holding many executions: the executions list (first
 * page, filtered, a later page), search, and an execution's page (the execution and its trace, together).
 */
export async function main(argv: string[]): Promise<void> {
  const s = parseSettings(argv);
  const report = new Report();
  const progress = new Progress();
  const cleanup = new Cleanup();
  const disarm = guardRun(progress, cleanup, 20 * 60_000);
  const started = new Date();
  const figures: Record<string, Record<string, Summary>> = {};
  try {
    for (const kind of ['sqlite', 'postgres'] as const) {
      const dir = mkdtempSync(join(tmpdir(), `cosmos-bench-ui-${kind}-`));
      cleanup.add(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
      const url = databaseUrl();
      const schema = uniqueSchema('bench_ui');
      const store: StoreOptions =
        kind === 'sqlite' ? { kind, path: join(dir, 'cosmos.db') } : { kind, url, schema };
      if (kind === 'postgres') cleanup.add(`drop schema ${schema}`, () => dropSchema(url, schema));
      progress.start(`${kind}: filling the store with ${s.executions} executions`);
      const ids = await fill(store, s.executions, progress);
      // A store that grew to this size over time has been analyzed by autovacuum; one filled a moment ago
      // has no statistics yet, and its planner walks the whole table for a filtered list.
      if (kind === 'postgres')
        await withClient(url, async (c) => {
          for (const table of ['executions', 'execution_search'])
            await c.query(`ANALYZE ${pg.escapeIdentifier(schema)}.${table}`);
        });
      progress.done();
      const node = await startNode({
        store,
        server: { host: '127.0.0.1', port: 0 },
        logLevel: 'warn',
        runtime: { dataDir: dir },
      });
      const stop = cleanup.add(`stop the ${kind} node`, () => node.close());
      const api = `${node.url}/v1/executions`;
      const pick = (): string => ids[Math.floor(Math.random() * ids.length)]!;
      progress.start(`${kind}: timing the UI's API calls`);
      const page2 = ((await (await fetch(`${api}?limit=50`)).json()) as { nextCursor: string }).nextCursor;
      const f: Record<string, Summary> = {
        list: await timed(s.requests, () => `${api}?limit=50`),
        list_filtered: await timed(s.requests, () => `${api}?limit=50&service=encoder&status=failed`),
        list_page2: await timed(s.requests, () => `${api}?limit=50&cursor=${page2}`),
        search_text: await timed(s.requests, () => `${api}?limit=50&q=${RARE_TITLE}`),
        search_id: await timed(s.requests, () => `${api}?limit=50&q=${pick()}`),
        execution_page: await timed(s.requests, () => {
          const id = pick();
          return [`${api}/${id}`, `${api}/${id}/trace`];
        }),
      };
      const found = ((await (await fetch(`${api}?limit=50&q=${RARE_TITLE}`)).json()) as { items: unknown[] })
        .items;
      if (found.length !== Math.ceil(s.executions / RARE_EVERY))
        throw new Error(`search for "${RARE_TITLE}" found ${found.length} executions`);
      progress.done();
      await stop();
      figures[kind] = f;
      for (const [name, v] of Object.entries(f)) report.metric(`ui_${kind}_${name}_p50`, v.p50, 'ms');
    }
    for (const line of barChart(
      Object.entries(figures).flatMap(([kind, f]) =>
        Object.entries(f).map(([name, v]) => ({
          label: `${kind} ${name}`,
          value: Math.round(v.p50 * 10) / 10,
        })),
      ),
      'ms p50',
    ))
      progress.info(`  ${line}`);
    const worst = Math.max(...Object.values(figures).flatMap((f) => Object.values(f).map((v) => v.p50)));
    report.metric('ui_worst_p50', worst, 'ms');
    report.note(worst < 50 ? 'every UI call is under 50 ms at p50' : 'some UI call is over 50 ms at p50');
    report.write(fileURLToPath(new URL('./results/ui.json', import.meta.url)), {
      benchmark: 'ui',
      args: argv,
      date: started.toISOString(),
      durationSeconds: Number(((Date.now() - started.getTime()) / 1000).toFixed(1)),
      machine: machineInfo(),
      settings: s,
      figures,
      method: {
        store: `${s.executions} executions of the example services' shape (input, state, output, a 5-event trace), spread over ${s.executions * 10} ms`,
        calls:
          'over HTTP to a node on that store: first page (50), filtered by service and status, the second page by cursor, a text search matching one execution in 5,000, a search by id, and an execution page (the execution and its trace, fetched together)',
        timing: `${s.requests} requests per call, one at a time, after 10 unmeasured`,
      },
    });
  } finally {
    await cleanup.runAll();
    disarm();
  }
}
