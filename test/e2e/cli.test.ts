import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cosmos, listeningUrl, type CliRun } from '../support/cli.js';
import { loadMigrations } from '../../src/store/migrations.js';
import { dropSchema, pgUrl } from '../support/stores.js';

describe('cosmos CLI', () => {
  const runs: CliRun[] = [];
  const dirs: string[] = [];

  afterEach(() => {
    for (const r of runs.splice(0)) if (r.child.exitCode === null) r.child.kill('SIGKILL');
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  const tempDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'cosmos-cli-'));
    dirs.push(d);
    return d;
  };

  it('cosmos dev serves health, readiness and queues on the embedded store, and stops on SIGTERM', async () => {
    const data = tempDir();
    const run = cosmos(['dev', '--port', '0', '--data', data]);
    runs.push(run);
    const url = await listeningUrl(run);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(run.output.join('\n')).toContain(`embedded SQLite at ${join(data, 'cosmos.db')}`);
    expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok' });
    expect(await (await fetch(`${url}/readyz`)).json()).toEqual({
      status: 'ready',
      store: 'sqlite',
      schemaVersion: loadMigrations('sqlite').length,
    });
    // The workflow engine's events queue is the one a fresh node has.
    const { queues } = (await (await fetch(`${url}/v1/queues`)).json()) as { queues: { name: string }[] };
    expect(queues.map((q) => q.name)).toEqual(['workflow.events']);
    const missing = await fetch(`${url}/v1/nothing-here`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({
      error: { code: 'not_found', message: 'no route GET /v1/nothing-here' },
    });
    run.child.kill('SIGTERM');
    expect(await run.exited).toEqual({ code: 0, signal: null });
  });

  it('refuses to listen beyond loopback without authentication', async () => {
    const run = cosmos(['dev', '--host', '0.0.0.0', '--port', '0', '--data', tempDir()]);
    runs.push(run);
    const { code } = await run.exited;
    expect(code).not.toBe(0);
    expect(run.output.join('\n')).toMatch(/refusing to listen on 0\.0\.0\.0 without authentication/);
  });

  it('cosmos queues lists what a node created', async () => {
    const data = tempDir();
    const { openStore, Queue } = await import('../../src/index.js');
    const store = await openStore({ kind: 'sqlite', path: join(data, 'cosmos.db') });
    const queue = new Queue(store);
    await queue.enqueueMany([1, 2, 3].map((payload) => ({ queue: 'media', payload })));
    await queue.configure('media', { dequeuePaused: true });
    await store.close();
    const run = cosmos(['queues', '--data', data, '--json']);
    runs.push(run);
    expect((await run.exited).code).toBe(0);
    const [media] = JSON.parse(run.output.join('\n')) as {
      name: string;
      dequeuePaused: boolean;
      counts: { pending: number };
    }[];
    expect(media).toMatchObject({ name: 'media', dequeuePaused: true, counts: { pending: 3 } });
  });

  it.runIf(pgUrl)('cosmos start runs a node on postgres', async () => {
    const schema = `t_cli_${process.pid}_${Date.now().toString(36)}`;
    const run = cosmos(['start', '--db', pgUrl!, '--schema', schema, '--port', '0']);
    runs.push(run);
    try {
      const url = await listeningUrl(run);
      expect(await (await fetch(`${url}/readyz`)).json()).toEqual({
        status: 'ready',
        store: 'postgres',
        schemaVersion: loadMigrations('postgres').length,
      });
      run.child.kill('SIGTERM');
      expect((await run.exited).code).toBe(0);
    } finally {
      await dropSchema(schema);
    }
  });
});
