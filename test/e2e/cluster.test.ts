import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeView } from '../../src/cluster/node-registry.js';
import { cosmos, listeningUrl, stopCli, waitForLine, type CliRun } from '../support/cli.js';
import { dropSchema, pgUrl } from '../support/stores.js';

const SERVICES = fileURLToPath(new URL('../fixtures/faults', import.meta.url));

async function json<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, init);
  return (await res.json()) as T;
}

const nodesOf = (api: string): Promise<NodeView[]> =>
  json<{ nodes: NodeView[] }>(`${api}/v1/nodes`).then((b) => b.nodes);

/** Distributed mode end to end: `cosmos start` and `cosmos worker` processes on one PostgreSQL schema. */
describe.runIf(pgUrl)('distributed mode: API/engine nodes and a worker node on PostgreSQL', () => {
  const schema = `e2e_cluster_${process.pid}`;
  let dir: string;
  let config: string;
  let log: string;
  const runs = new Map<string, CliRun>();
  const urls = new Map<string, string>();

  function startApi(name: string): CliRun {
    const run = cosmos(['start', SERVICES, '--config', config, '--port', '0', '--name', name]);
    runs.set(name, run);
    return run;
  }

  function startWorker(name: string): CliRun {
    const run = cosmos(['worker', SERVICES, '--config', config, '--slots', '2', '--name', name]);
    runs.set(name, run);
    return run;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cosmos-cluster-'));
    config = join(dir, 'cosmos.json');
    log = join(dir, 'runs.log');
    writeFileSync(log, '');
    writeFileSync(
      config,
      JSON.stringify({
        db: pgUrl,
        schema,
        heartbeatMs: 500,
        leaseMs: 2_000,
        pollMs: 200,
        maintenanceIntervalMs: 200,
        drainTimeoutMs: 10_000,
        logLevel: 'warn',
      }),
    );
    // The first node migrates the schema; the others start together after it.
    urls.set('api-a', await listeningUrl(startApi('api-a'), 60_000));
    const b = startApi('api-b');
    const w = startWorker('worker-1');
    urls.set('api-b', await listeningUrl(b, 60_000));
    await waitForLine(w, /^cosmos worker: running/, 0, 60_000);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([...runs.values()].map((r) => stopCli(r)));
    await dropSchema(schema);
    rmSync(dir, { recursive: true, force: true });
  });

  it('an API/engine node records invocations and the worker node runs them; the registry lists every node', async () => {
    const res = await fetch(`${urls.get('api-a')}/v1/services/faults/fanout`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'wait=30' },
      body: JSON.stringify({ log }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; output: { counts: Record<string, number> } };
    expect(body.status).toBe('succeeded');
    expect(body.output.counts).toEqual({ 0: 1, 1: 1, 2: 1, 3: 1, sum: 1 });
    // The functions ran in the worker's process: the start nodes run none.
    const worker = runs.get('worker-1')!.child.pid;
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(5);

    // Read until every node is seen up: a node busy under a loaded CI can miss a beat and read as lost.
    await expect
      .poll(
        async () =>
          (await nodesOf(urls.get('api-b')!))
            .map((n) => ({
              name: n.name,
              status: n.status,
              roles: n.roles,
              pools: n.pools,
              slots: n.slots,
              url: n.url,
            }))
            .sort((a, b) => a.name.localeCompare(b.name)),
        { timeout: 10_000, interval: 200 },
      )
      .toEqual([
        {
          name: 'api-a',
          status: 'up',
          roles: ['api', 'engine'],
          pools: [],
          slots: 0,
          url: urls.get('api-a'),
        },
        {
          name: 'api-b',
          status: 'up',
          roles: ['api', 'engine'],
          pools: [],
          slots: 0,
          url: urls.get('api-b'),
        },
        { name: 'worker-1', status: 'up', roles: ['worker'], pools: ['default'], slots: 2, url: null },
      ]);
    expect((await nodesOf(urls.get('api-b')!)).find((n) => n.name === 'worker-1')!.pid).toBe(worker);
    // Every duty is held, each by exactly one node.
    await expect
      .poll(async () => (await nodesOf(urls.get('api-a')!)).flatMap((n) => n.duties).sort(), {
        timeout: 10_000,
      })
      .toEqual(['node-registry', 'queue-maintenance', 'search-index', 'workflow-recovery']);
  });

  it('duties move to a surviving node when their holder is killed, and the dead node shows as lost', async () => {
    const nodes = await nodesOf(urls.get('api-a')!);
    const holder = nodes.find((n) => n.duties.includes('queue-maintenance'))!;
    const run = runs.get(holder.name)!;
    run.child.kill('SIGKILL');
    await run.exited;
    const survivor = urls.get(holder.name === 'api-a' ? 'api-b' : 'api-a')!;
    await expect
      .poll(
        async () => {
          const now = await nodesOf(survivor);
          return {
            dead: now.find((n) => n.id === holder.id)?.status,
            duties: now
              .filter((n) => n.status === 'up')
              .flatMap((n) => n.duties)
              .sort(),
          };
        },
        { timeout: 20_000, interval: 200 },
      )
      .toEqual({
        dead: 'lost',
        duties: ['node-registry', 'queue-maintenance', 'search-index', 'workflow-recovery'],
      });
    // Bring it back for the next test, as its supervisor would.
    if (holder.name === 'worker-1')
      await waitForLine(startWorker('worker-1'), /^cosmos worker: running/, 0, 60_000);
    else urls.set(holder.name, await listeningUrl(startApi(holder.name), 60_000));
  }, 90_000);

  it('SIGTERM drains a worker: the running function finishes once, the node says stopped and exits 0', async () => {
    writeFileSync(log, '');
    const res = await fetch(`${urls.get('api-a')}/v1/services/faults/nap`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ms: 1_500, log }),
    });
    expect(res.status).toBe(202);
    const { executionId } = (await res.json()) as { executionId: string };
    await expect.poll(() => readFileSync(log, 'utf8'), { timeout: 15_000, interval: 50 }).toMatch(/^nap /);
    const worker = runs.get('worker-1')!;
    const from = worker.output.length;
    worker.child.kill('SIGTERM');
    await waitForLine(worker, /draining/, from, 15_000);
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    expect(worker.output.slice(from).join('\n')).toMatch(/drained, stopped/);
    // The result was recorded before the worker left: the execution finishes with no other worker around.
    await expect
      .poll(
        async () =>
          (await json<{ status: string }>(`${urls.get('api-a')}/v1/executions/${executionId}`)).status,
        {
          timeout: 10_000,
        },
      )
      .toBe('succeeded');
    expect(readFileSync(log, 'utf8').trim().split('\n')).toHaveLength(1);
    const me = (await nodesOf(urls.get('api-a')!)).filter((n) => n.name === 'worker-1');
    expect(me.some((n) => n.status === 'stopped' && n.duties.length === 0)).toBe(true);
    // /readyz of a draining API node is covered by the node test; `cosmos nodes` reads the same registry.
    const listing = cosmos(['nodes', '--db', pgUrl!, '--schema', schema]);
    expect((await listing.exited).code).toBe(0);
    expect(listing.output.join('\n')).toMatch(/worker-1\s+stopped\s+worker/);
  }, 60_000);

  it('a configuration file with a wrong key or value is refused, naming it', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ db: pgUrl, slots: -1, colour: 'blue' }));
    const run = cosmos(['worker', SERVICES, '--config', bad]);
    const { code } = await run.exited;
    expect(code).toBe(2);
    const text = run.output.join('\n');
    expect(text).toMatch(/config_invalid/);
    expect(text).toMatch(/slots/);
    expect(text).toMatch(/colour/);
    expect(existsSync(bad)).toBe(true);
  });
});
