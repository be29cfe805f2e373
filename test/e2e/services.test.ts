import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cosmos, listeningUrl, stopCli, waitForLine, type CliRun } from '../support/cli.js';

const SERVICES = fileURLToPath(new URL('../fixtures/services', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const INDEX = join(ROOT, 'src/index.ts');

interface Body {
  executionId: string;
  status: string;
  output?: unknown;
  error?: { code: string; message: string; details?: { issues?: { path: string }[] } };
  links?: Record<string, string>;
}

/** `cosmos dev` on two fixture services (greeter calls text), driven over HTTP and through the CLI. */
describe('cosmos dev serving services', () => {
  let run: CliRun;
  let url: string;
  let data: string;
  const temp: string[] = [];

  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Body, headers: res.headers };
  };
  const get = async <T = Body>(path: string): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${url}${path}`);
    return { status: res.status, body: (await res.json()) as T };
  };
  const finished = async (id: string): Promise<Body> => {
    for (let i = 0; i < 200; i++) {
      const { body } = await get(`/v1/executions/${id}`);
      if (body.status !== 'running') return body;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${id} did not finish`);
  };
  const cli = async (args: string[]): Promise<{ code: number | null; out: string }> => {
    const r = cosmos(args);
    const { code } = await r.exited;
    return { code, out: r.output.join('\n') };
  };

  beforeAll(async () => {
    data = mkdtempSync(join(tmpdir(), 'cosmos-services-'));
    // A temporary folder holding the two fixture services, inside the project so their imports resolve.
    mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
    const services = mkdtempSync(join(ROOT, 'test-artifacts', 'services-'));
    temp.push(services);
    for (const name of ['greeter', 'text']) {
      mkdirSync(join(services, name));
      const text = readFileSync(join(SERVICES, name, 'service.ts'), 'utf8');
      writeFileSync(
        join(services, name, 'service.ts'),
        text.replace("'../../../../src/index.js'", JSON.stringify(INDEX)),
      );
    }
    run = cosmos(['dev', services, '--port', '0', '--data', data]);
    url = await listeningUrl(run, 60_000);
  }, 90_000);

  afterAll(async () => {
    await stopCli(run);
    for (const d of [data, ...temp]) rmSync(d, { recursive: true, force: true });
  });

  it('lists the services it loaded', async () => {
    // Printed just after the "listening on" line; under load it can arrive after the first requests.
    await waitForLine(run, /greeter \(greet, wait\) · text \(upper, sneak\)/);
  });

  it('submit → 202 → poll → succeeded with the output, through a call to another service', async () => {
    const r = await post('/v1/services/greeter/greet', { name: 'ada' });
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({
      status: 'running',
      links: { self: `/v1/executions/${r.body.executionId}` },
    });
    expect(r.headers.get('location')).toBe(`/v1/executions/${r.body.executionId}`);
    const x = await finished(r.body.executionId);
    expect(x).toMatchObject({ status: 'succeeded', output: { greeting: 'HELLO ADA!' } });
    const trace = await get<{ children: { workflow: string; status: string }[] }>(
      `/v1/executions/${r.body.executionId}/trace`,
    );
    expect(trace.body.children).toEqual([
      expect.objectContaining({ workflow: 'text.upper', status: 'succeeded' }),
    ]);
  });

  it('answers 200 with the output under Prefer: wait', async () => {
    const r = await post(
      '/v1/services/greeter/greet',
      { name: 'bo', punctuation: '.' },
      { prefer: 'wait=10' },
    );
    expect(r.status).toBe(200);
    expect(r.headers.get('preference-applied')).toBe('wait=10');
    expect(r.body).toMatchObject({ status: 'succeeded', output: { greeting: 'HELLO BO.' } });
  });

  it('refuses invalid input with 400, naming each failing path', async () => {
    const r = await post('/v1/services/greeter/greet', { name: '', punctuation: '?', extra: 1 });
    expect(r.status).toBe(400);
    expect(r.body.error!.code).toBe('validation_failed');
    expect(r.body.error!.details!.issues!.map((i) => i.path).sort()).toEqual(['name', 'punctuation']);
  });

  it('answers 404 with codes for an unknown service, operation or execution', async () => {
    const service = await post('/v1/services/nope/greet', {});
    expect(service.status).toBe(404);
    expect(service.body.error!.code).toBe('service_not_found');
    const operation = await post('/v1/services/greeter/nope', {});
    expect(operation.status).toBe(404);
    expect(operation.body.error).toMatchObject({
      code: 'operation_not_found',
      details: { operations: ['greet', 'wait'] },
    });
    const execution = await get('/v1/executions/nope');
    expect(execution.status).toBe(404);
    expect(execution.body.error!.code).toBe('execution_not_found');
  });

  it('bounds the priority by what the operation allows', async () => {
    const ok = await post('/v1/services/greeter/greet', { name: 'p' }, { 'cosmos-priority': '-30000' });
    expect(ok.status).toBe(202);
    const x = (await get<{ priority: number; createdAt: string }>(`/v1/executions/${ok.body.executionId}`))
      .body;
    expect(x.priority).toBeLessThan(Date.parse(x.createdAt) - 25_000);
    const out = await post('/v1/services/greeter/greet', { name: 'p' }, { 'cosmos-priority': '-600000' });
    expect(out.status).toBe(400);
    expect(out.body.error!.code).toBe('priority_out_of_range');
    const none = await post('/v1/services/text/upper', { text: 'p' }, { 'cosmos-priority': '-1' });
    expect(none.body.error!.code).toBe('priority_out_of_range');
  });

  it('returns the same execution for the same Idempotency-Key, and refuses it for another input', async () => {
    const key = { 'idempotency-key': `order-${Date.now()}` };
    const first = await post('/v1/services/greeter/greet', { name: 'cy' }, key);
    const again = await post('/v1/services/greeter/greet', { name: 'cy' }, key);
    expect(first.status).toBe(202);
    expect(again.body.executionId).toBe(first.body.executionId);
    const other = await post('/v1/services/greeter/greet', { name: 'someone else' }, key);
    expect(other.status).toBe(409);
    expect(other.body.error!.code).toBe('idempotency_conflict');
  });

  it('cancels a running execution; a finished one answers 409', async () => {
    const r = await post('/v1/services/greeter/wait', { seconds: 600 });
    const cancel = await post(`/v1/executions/${r.body.executionId}/cancel`, { reason: 'test' });
    expect(cancel.status).toBe(202);
    expect(await finished(r.body.executionId)).toMatchObject({ status: 'canceled' });
    const again = await post(`/v1/executions/${r.body.executionId}/cancel`, {});
    expect(again.status).toBe(409);
    expect(again.body.error!.code).toBe('execution_finished');
  });

  it('refuses a call to a service not declared in calls', async () => {
    const r = await post('/v1/services/text/sneak', {}, { prefer: 'wait=10' });
    expect(r.body).toMatchObject({ status: 'succeeded', output: { refused: 'call_not_allowed' } });
    expect((r.body.output as { message: string }).message).toMatch(/text may not call greeter/);
  });

  it('searches executions and pages through them with a cursor', async () => {
    const marker = `needle-${Date.now()}`;
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++)
      ids.add(
        (await post('/v1/services/text/upper', { text: `${marker} ${i}` }, { prefer: 'wait=10' })).body
          .executionId,
      );
    type Page = { items: { executionId: string; service: string }[]; nextCursor: string | null };
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const qs: string = `q=${marker}&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page: Page = (await get<Page>(`/v1/executions?${qs}`)).body;
      seen.push(...page.items.map((x) => x.executionId));
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(new Set(seen)).toEqual(ids);
    expect(seen).toHaveLength(5);
    const byService = (await get<Page>('/v1/executions?service=greeter&limit=200')).body;
    expect(byService.items.length).toBeGreaterThan(0);
    expect(byService.items.every((x) => x.service === 'greeter')).toBe(true);
    const byId = (await get<Page>(`/v1/executions?q=${[...ids][0]}`)).body;
    expect(byId.items.map((x) => x.executionId)).toEqual([[...ids][0]]);
    const bad = await get<Body>('/v1/executions?status=sleeping');
    expect(bad.status).toBe(400);
  });

  it('cosmos call --wait prints the output; executions, trace and logs read it back', async () => {
    const call = await cli([
      'call',
      'text',
      'upper',
      '--input',
      '{"text":"from the cli"}',
      '--wait',
      '--url',
      url,
    ]);
    expect(call.code).toBe(0);
    expect(JSON.parse(call.out.slice(0, call.out.indexOf('}') + 1))).toEqual({ text: 'FROM THE CLI' });
    const id = /executions\/([^/\s]+)\/trace/.exec(call.out)![1]!;
    const list = await cli(['executions', '--url', url, '--q', 'from the cli', '--json']);
    expect((JSON.parse(list.out) as { items: { executionId: string }[] }).items[0]!.executionId).toBe(id);
    const trace = await cli(['trace', id, '--url', url]);
    expect(trace.out).toMatch(/started[\s\S]*rule\s+upper[\s\S]*reaction[\s\S]*succeeded/);
    // The same, read from the embedded store directly.
    const logs = await cli(['logs', id, '--data', data]);
    expect(logs.out).toMatch(/upper\s+upper-casing \{"length":12\}/);
    const bad = await cli(['call', 'text', 'upper', '--input', '{"text":1}', '--url', url]);
    expect(bad.code).toBe(2);
    expect(bad.out).toMatch(/validation_failed: .*text/);
  });

  it('serves OpenAPI 3.1 that passes a validator, with every operation', async () => {
    const doc = (await get<Record<string, unknown>>('/openapi.json')).body;
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(Object.keys(doc.paths as object)).toEqual(
      expect.arrayContaining([
        '/v1/services/greeter/greet',
        '/v1/services/greeter/wait',
        '/v1/services/text/upper',
        '/v1/services/text/sneak',
        '/v1/executions/{id}',
      ]),
    );
  });

  it('generates a typed client that type-checks and completes a call', async () => {
    mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
    const dir = mkdtempSync(join(ROOT, 'test-artifacts', 'client-'));
    temp.push(dir);
    const gen = await cli(['client', 'greeter', '--out', join(dir, 'greeter-client.ts'), '--url', url]);
    expect(gen.code).toBe(0);
    writeFileSync(
      join(dir, 'use.ts'),
      `import { createGreeterClient, type GreeterGreetOutput } from './greeter-client.js';
export async function main(url: string): Promise<GreeterGreetOutput | undefined> {
  const client = createGreeterClient(url);
  const r = await client.greet({ name: 'typed', punctuation: '!' }, { wait: 10 });
  // @ts-expect-error name must be a string
  const wrong: Parameters<typeof client.greet>[0] = { name: 42 };
  void wrong;
  return r.output;
}
`,
    );
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          noEmit: true,
          skipLibCheck: true,
          types: ['node'],
          typeRoots: [join(ROOT, 'node_modules/@types')],
        },
        files: ['use.ts'],
      }),
    );
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], {
      stdio: 'pipe',
    });
    const mod = (await import(join(dir, 'use.ts'))) as { main: (url: string) => Promise<unknown> };
    expect(await mod.main(url)).toEqual({ greeting: 'HELLO TYPED!' });
  });

  it('keeps owners and calls as data: the services and every caller of one', async () => {
    type Services = { services: { name: string; owner: { team: string }; calls: string[] }[] };
    const { services } = (await get<Services>('/v1/services')).body;
    expect(services.map((s) => [s.name, s.owner.team, s.calls])).toEqual([
      ['greeter', 'greeting-team', ['text']],
      ['text', 'text-team', []],
    ]);
    const callers = await get<{ callers: { name: string; depth: number }[] }>('/v1/services/text/callers');
    expect(callers.body.callers).toEqual([{ name: 'greeter', depth: 1 }]);
    expect((await get('/v1/services/nope/callers')).status).toBe(404);
  });

  it('exposes Prometheus metrics', async () => {
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).toMatch(/^# TYPE cosmos_executions_finished_total counter$/m);
    expect(text).toMatch(
      /cosmos_executions_finished_total\{workflow="greeter.greet",status="succeeded"\} [1-9]/,
    );
  });
});

/** A service folder of its own, edited while `cosmos dev` runs. */
describe('cosmos dev reloading services', () => {
  // `now` answers at once, or after `waitMs` (a durable timer), with the answer of the code it started on.
  const source = (answer: string, extra = ''): string => `import { z } from 'zod';
import { defineService, rule, rules } from ${JSON.stringify(INDEX)};
export default defineService({
  name: 'clock',
  owner: { team: 'time' },
  operations: {
    now: { input: z.object({ waitMs: z.number().int().min(0).default(0) }), output: z.unknown(), workflow: 'now' },
  },
  workflows: {
    now: rules<{ waitMs: number }, { asked: boolean }>({
      initial: () => ({ asked: false }),
      rules: [
        rule('answer', {
          match: (s) => !s.asked,
          action: (s, ctx) => {
            s.asked = true;
            if (ctx.input.waitMs > 0) ctx.sleep(ctx.input.waitMs);
            else ctx.complete(${answer});
          },
          reaction: (_s, _r, ctx) => ctx.complete(${answer}),
        }),
      ],
    }),
  },
  ${extra}
});
`;
  const dirs: string[] = [];
  const runs: CliRun[] = [];
  afterAll(async () => {
    for (const r of runs)
      if (r.child.exitCode === null) {
        r.child.kill('SIGTERM');
        await r.exited;
      }
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const waitFor = (run: CliRun, pattern: RegExp, from: number): Promise<void> =>
    waitForLine(run, pattern, from);

  it('serves the edited code to the next submission, finishes running executions on theirs, and keeps serving when an edit is invalid', async () => {
    // Inside the project, as a user's services are: their imports resolve from its node_modules.
    mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
    const dir = mkdtempSync(join(ROOT, 'test-artifacts', 'reload-'));
    dirs.push(dir);
    mkdirSync(join(dir, 'services', 'clock'), { recursive: true });
    const file = join(dir, 'services', 'clock', 'service.ts');
    writeFileSync(file, source('{ v: 1 }'));
    const run = cosmos(['dev', join(dir, 'services'), '--port', '0', '--data', join(dir, 'data')]);
    runs.push(run);
    const url = await listeningUrl(run, 60_000);
    const now = async (): Promise<unknown> => {
      const res = await fetch(`${url}/v1/services/clock/now`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', prefer: 'wait=10' },
        body: '{}',
      });
      return ((await res.json()) as { output: unknown }).output;
    };
    expect(await now()).toEqual({ v: 1 });
    // Started on v1 and still running when v2 lands: it finishes on v1.
    const started = await fetch(`${url}/v1/services/clock/now`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ waitMs: 3_000 }),
    });
    const running = ((await started.json()) as { executionId: string }).executionId;
    let mark = run.output.length;
    writeFileSync(file, source('{ v: 2 }'));
    await waitFor(run, /services reloaded \(clock\)/, mark);
    expect(await now()).toEqual({ v: 2 });
    const pinned = await fetch(`${url}/v1/executions/${running}`);
    expect(await pinned.json()).toMatchObject({ status: 'running' });
    for (let i = 0; i < 200; i++) {
      const x = (await (await fetch(`${url}/v1/executions/${running}`)).json()) as {
        status: string;
        output: unknown;
      };
      if (x.status !== 'running') {
        expect(x).toMatchObject({ status: 'succeeded', output: { v: 1 } });
        break;
      }
      if (i === 199) throw new Error(`${running} did not finish`);
      await new Promise((r) => setTimeout(r, 50));
    }
    mark = run.output.length;
    writeFileSync(file, source('{ v: 3 }', "calls: ['nowhere'],"));
    await waitFor(run, /reload failed, still serving the previous services: .*calls "nowhere"/, mark);
    expect(await now()).toEqual({ v: 2 });
  });

  it('refuses to start on an invalid service, saying what is wrong', async () => {
    mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
    const dir = mkdtempSync(join(ROOT, 'test-artifacts', 'bad-'));
    dirs.push(dir);
    mkdirSync(join(dir, 'wrong-folder'), { recursive: true });
    writeFileSync(join(dir, 'wrong-folder', 'service.ts'), source('1'));
    const run = cosmos(['dev', dir, '--port', '0', '--data', join(dir, 'data')]);
    runs.push(run);
    const { code } = await run.exited;
    expect(code).toBe(2);
    expect(run.output.join('\n')).toMatch(
      /service_invalid: .*defines service "clock" in folder "wrong-folder": name the folder after the service/,
    );
  });
});
