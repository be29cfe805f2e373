import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNode, type CosmosNode } from '../src/node.js';
import { intOption, stringOptions } from './lib/args.js';
import { barChart } from './lib/chart.js';
import { Cleanup } from './lib/cleanup.js';
import { guardRun } from './lib/guard.js';
import { machineInfo } from './lib/machine.js';
import { Progress } from './lib/progress.js';
import { Report } from './lib/report.js';
import { summarize } from './lib/stats.js';

const USAGE = `usage: npm run bench -- thumbnails [options]
  --burst <n>    thumbnail requests sent at once (default 200)
  --alone <n>    requests sent one at a time first, for the unloaded latency (default 30)`;

const EXAMPLES = fileURLToPath(new URL('../examples/media', import.meta.url));
const FUNCTION = 'thumbnails.thumbnail';

function parseSettings(argv: string[]): { burst: number; alone: number } {
  const values = stringOptions(argv, ['burst', 'alone'], USAGE);
  return { burst: intOption(values.burst, 200, 'burst'), alone: intOption(values.alone, 30, 'alone') };
}

/**
 * The latency path of the media examples: `cosmos dev`'s node (embedded SQLite, the example services) takes
 * a burst of `thumbnails.generate` requests over HTTP, each waiting for its result (`Prefer: wait`). The
 * figures are each request's latency, and how many handler calls served the burst (micro-batching).
 */
export async function main(argv: string[]): Promise<void> {
  const s = parseSettings(argv);
  const report = new Report();
  const progress = new Progress();
  const cleanup = new Cleanup();
  const disarm = guardRun(progress, cleanup, 5 * 60_000);
  const started = new Date();
  try {
    const dir = mkdtempSync(join(tmpdir(), 'cosmos-bench-thumbnails-'));
    cleanup.add(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
    progress.start('starting a node with the media examples');
    const node: CosmosNode = await startNode({
      store: { kind: 'sqlite', path: join(dir, 'cosmos.db') },
      server: { host: '127.0.0.1', port: 0 },
      servicesDir: EXAMPLES,
      logLevel: 'warn',
    });
    cleanup.add('stop the node', () => node.close());
    progress.done(node.url);

    let frame = 0;
    const request = async (): Promise<number> => {
      const t0 = performance.now();
      const res = await fetch(`${node.url}/v1/services/thumbnails/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', prefer: 'wait=30' },
        body: JSON.stringify({
          source: { sample: 'countdown', frames: 1000, width: 640, height: 360, frame: frame++ % 1000 },
          width: 160,
        }),
      });
      const body = (await res.json()) as { status?: string };
      if (res.status !== 200 || body.status !== 'succeeded')
        throw new Error(`thumbnail request answered ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
      return performance.now() - t0;
    };

    progress.start(`${s.alone} requests one at a time`);
    for (let i = 0; i < 5; i++) await request(); // warm-up: bundles loaded, connections open
    const alone: number[] = [];
    for (let i = 0; i < s.alone; i++) alone.push(await request());
    const aloneSummary = summarize(alone);
    progress.done(`p50 ${aloneSummary.p50.toFixed(1)} ms`);

    const callsBefore = node.runtime.handlerCallCounts()[FUNCTION] ?? 0;
    progress.start(`a burst of ${s.burst} requests`);
    const t0 = performance.now();
    let done = 0;
    const burst = await Promise.all(
      Array.from({ length: s.burst }, () =>
        request().then((ms) => {
          if (++done % 20 === 0) progress.update(`${done}/${s.burst}`);
          return ms;
        }),
      ),
    );
    const wall = performance.now() - t0;
    const calls = (node.runtime.handlerCallCounts()[FUNCTION] ?? 0) - callsBefore;
    const burstSummary = summarize(burst);
    progress.done(`${Math.round(wall)} ms for the burst, ${calls} handler calls`);

    for (const line of barChart(
      [
        { label: 'alone p50', value: Math.round(aloneSummary.p50) },
        { label: 'burst p50', value: Math.round(burstSummary.p50) },
        { label: 'burst p99', value: Math.round(burstSummary.p99) },
      ],
      'ms',
    ))
      progress.info(`  ${line}`);
    report.metric('thumbnail_alone_p50', aloneSummary.p50, 'ms');
    report.metric('thumbnail_burst_p50', burstSummary.p50, 'ms');
    report.metric('thumbnail_burst_p99', burstSummary.p99, 'ms');
    report.metric('thumbnail_burst_wall', wall, 'ms');
    report.metric('thumbnail_requests', s.burst, 'requests');
    report.metric('thumbnail_handler_calls', calls, 'calls');
    report.ratio('thumbnail_requests_per_handler_call', s.burst / Math.max(1, calls));
    report.write(fileURLToPath(new URL('./results/thumbnails.json', import.meta.url)), {
      benchmark: 'thumbnails',
      args: argv,
      date: started.toISOString(),
      durationSeconds: Number(((Date.now() - started.getTime()) / 1000).toFixed(1)),
      machine: machineInfo(),
      settings: s,
      method: {
        node: 'startNode as cosmos dev runs it: embedded SQLite, the example services, HTTP on 127.0.0.1',
        request:
          'POST /v1/services/thumbnails/generate with Prefer: wait=30, timed until the 200 with the thumbnail',
        alone: `${s.alone} requests one after another, after 5 unmeasured`,
        burst: `${s.burst} requests sent together; handler calls counted by the function runtime`,
      },
    });
  } finally {
    await cleanup.runAll();
    disarm();
  }
}
