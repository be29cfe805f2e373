import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countdownSvg } from '../../examples/media/lib/frames.js';
import type { Span } from '../../src/observability/spans.js';
import { cosmos, listeningUrl, stopCli, type CliRun } from '../support/cli.js';

interface Rendition {
  name: string;
  width: number;
  height: number;
  frames: number;
  bytes: number;
  ref: string;
}
interface Ingest {
  executionId: string;
  status: string;
  output: {
    entry: string;
    renditions: Rendition[];
    quality: Record<string, { metrics: Record<string, { mean: number }>; failed: string[] }>;
    index: { sprite: string; manifest: string; spriteWidth: number; spriteHeight: number; tiles: number };
  };
}
interface Trace {
  spans: Span[];
  children: { executionId: string; workflow: string; status: string }[];
}

const FRAMES = 96;
const WIDTH = 320;
const HEIGHT = 180;
const LADDER = [
  { name: '180p', width: 320, height: 180, codec: 'webp', quality: 85 },
  { name: '120p', width: 214, height: 120, codec: 'webp', quality: 70 },
  { name: '90p', width: 160, height: 90, codec: 'webp', quality: 60 },
];

/** PSNR over all channels, written out here so the check does not lean on the example's own metric code. */
function psnr(a: Buffer, b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i]! - b[i]!) ** 2;
  return 10 * Math.log10((255 * 255) / (sum / a.length));
}

/** `cosmos dev` with no services folder serves the media examples; an ingest runs the whole pipeline. */
describe('media examples under cosmos dev', () => {
  let run: CliRun;
  let url: string;
  let data: string;
  let ingest: Ingest;
  let trace: Trace;

  const call = async <T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as T };
  };
  const blob = async (ref: string): Promise<Buffer> => {
    const res = await fetch(`${url}/v1/blobs/${ref}`);
    expect(res.status).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  };

  beforeAll(async () => {
    data = mkdtempSync(join(tmpdir(), 'cosmos-media-'));
    run = cosmos(['dev', '--port', '0', '--data', data]);
    url = await listeningUrl(run, 60_000);
    const r = await call<Ingest>(
      'POST',
      '/v1/services/catalog/ingest',
      {
        title: 'e2e countdown',
        source: { sample: 'countdown', frames: FRAMES, width: WIDTH, height: HEIGHT },
        ladder: LADDER,
        chunkFrames: 8,
      },
      { Prefer: 'wait=60' },
    );
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    ingest = r.body;
    trace = (await call<Trace>('GET', `/v1/executions/${ingest.executionId}/trace`)).body;
  }, 120_000);

  afterAll(async () => {
    await stopCli(run);
    rmSync(data, { recursive: true, force: true });
  });

  it('serves the four example services', async () => {
    const { body } = await call<{ services: { name: string }[] }>('GET', '/v1/services');
    expect(body.services.map((s) => s.name).sort()).toEqual(['catalog', 'encoder', 'quality', 'thumbnails']);
  });

  it('encodes 36 chunks (12 chunks x 3 rungs) in parallel: their bars overlap in the trace', () => {
    const encodes = trace.spans.filter((s) => s.kind === 'invocation' && s.name === 'encodeChunk');
    expect(encodes).toHaveLength(36);
    expect(new Set(encodes.map((s) => s.attributes.key)).size).toBe(36);
    const runs = encodes.map((s) => [s.attributes.startedAt as number, s.attributes.finishedAt as number]);
    for (const [start, end] of runs) expect(end).toBeGreaterThanOrEqual(start!);
    const overlapping = runs.filter(([s1, e1], i) =>
      runs.some(([s2, e2], j) => i !== j && s1! < e2! && s2! < e1!),
    );
    expect(overlapping.length).toBeGreaterThanOrEqual(2);
    // Assembly of a rung starts only after all of its chunks are back.
    for (const rung of LADDER) {
      const assemble = trace.spans.find((s) => s.name === 'assemble' && s.attributes.key === rung.name)!;
      const last = Math.max(
        ...encodes.filter((s) => String(s.attributes.key).startsWith(`${rung.name}/`)).map((s) => s.end!),
      );
      expect(assemble.start).toBeGreaterThanOrEqual(last);
    }
  });

  it('every rendition decodes with sharp with the right frame count and size', async () => {
    expect(ingest.output.renditions.map((r) => r.name)).toEqual(LADDER.map((r) => r.name));
    for (const [i, r] of ingest.output.renditions.entries()) {
      const meta = await sharp(await blob(r.ref), { pages: -1 }).metadata();
      expect(meta.format).toBe('webp');
      expect(meta.pages).toBe(FRAMES);
      expect(meta.width).toBe(LADDER[i]!.width);
      expect(meta.pageHeight).toBe(LADDER[i]!.height);
      expect(r.frames).toBe(FRAMES);
    }
  });

  it('the top rung is at least 30 dB PSNR against the source, measured here and by quality.measure', async () => {
    const top = ingest.output.renditions[0]!;
    const decoded = await sharp(await blob(top.ref), { pages: -1 })
      .removeAlpha()
      .raw()
      .toBuffer();
    const size = WIDTH * HEIGHT * 3;
    const values: number[] = [];
    for (let i = 0; i < FRAMES; i++) {
      const reference = await sharp(Buffer.from(countdownSvg(i, FRAMES, WIDTH, HEIGHT)))
        .resize(WIDTH, HEIGHT, { fit: 'cover' })
        .removeAlpha()
        .raw()
        .toBuffer();
      values.push(psnr(reference, decoded.subarray(i * size, (i + 1) * size)));
    }
    const mean = values.reduce((s, v) => s + v, 0) / values.length;
    expect(mean).toBeGreaterThanOrEqual(30);
    const q = ingest.output.quality['180p']!;
    expect(q.failed).toEqual([]);
    expect(q.metrics.psnr!.mean).toBeGreaterThanOrEqual(30);
    expect(Math.abs(q.metrics.psnr!.mean - mean)).toBeLessThan(1);
    expect(q.metrics.ssim!.mean).toBeGreaterThan(0.9);
    expect(q.metrics.ssim!.mean).toBeLessThanOrEqual(1);
  });

  it('indexes: a sprite of one tile per chunk and a manifest', async () => {
    const { index } = ingest.output;
    // 12 tiles of 160x90 on a 4x3 grid.
    expect(index).toMatchObject({ tiles: 12, spriteWidth: 640, spriteHeight: 270 });
    const meta = await sharp(await blob(index.sprite)).metadata();
    expect([meta.width, meta.height]).toEqual([640, 270]);
    const manifest = JSON.parse((await blob(index.manifest)).toString()) as {
      renditions: unknown[];
      sprite: { columns: number; rows: number };
    };
    expect(manifest.renditions).toHaveLength(3);
    expect(manifest.sprite).toMatchObject({ columns: 4, rows: 3 });
  });

  it('catalog.ingest shows its child executions (encode, then a measure per rung) in its trace', async () => {
    expect(trace.children.map((c) => c.workflow).sort()).toEqual([
      'encoder.encode',
      'quality.measure',
      'quality.measure',
      'quality.measure',
    ]);
    const executions = trace.spans.filter((s) => s.kind === 'execution');
    expect(executions).toHaveLength(5);
    const root = executions.find((s) => s.parentId === null)!;
    expect(root.name).toBe('catalog.ingest');
    for (const child of executions.filter((s) => s !== root)) {
      const call = trace.spans.find((s) => s.id === child.parentId)!;
      expect(call.kind).toBe('call');
      expect(call.attributes.childExecutionId).toBe(child.id);
    }
    const entry = JSON.parse((await blob(ingest.output.entry)).toString()) as { title: string };
    expect(entry.title).toBe('e2e countdown');
  });

  it('re-encodes an uploaded animated WebP (a file source) and makes a thumbnail on the latency path', async () => {
    const file = await blob(ingest.output.renditions[2]!.ref);
    const up = await fetch(`${url}/v1/blobs`, {
      method: 'POST',
      headers: { 'content-type': 'image/webp' },
      body: file,
    });
    expect(up.status).toBe(201);
    const { ref } = (await up.json()) as { ref: string };
    expect(ref).toBe(ingest.output.renditions[2]!.ref);
    const r = await call<{ status: string; output: { renditions: Rendition[] } }>(
      'POST',
      '/v1/services/encoder/encode',
      {
        source: { file: ref },
        ladder: [{ name: 'tiny', width: 80, height: 46, codec: 'webp', quality: 50 }],
        chunkFrames: 32,
      },
      { Prefer: 'wait=60' },
    );
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const meta = await sharp(await blob(r.body.output.renditions[0]!.ref), { pages: -1 }).metadata();
    expect([meta.pages, meta.width, meta.pageHeight]).toEqual([FRAMES, 80, 46]);

    const t = await call<{ status: string; output: { width: number; height: number; dataUrl: string } }>(
      'POST',
      '/v1/services/thumbnails/generate',
      { source: { sample: 'countdown', frames: 10, width: 320, height: 180, frame: 3 }, width: 96 },
      { Prefer: 'wait=30' },
    );
    expect(t.status).toBe(200);
    expect(t.body.output).toMatchObject({ width: 96, height: 54 });
    const thumb = await sharp(Buffer.from(t.body.output.dataUrl.split(',')[1]!, 'base64')).metadata();
    expect([thumb.format, thumb.width, thumb.height]).toEqual(['webp', 96, 54]);
  });

  it('a burst of thumbnail requests reaches the handler in micro-batches', async () => {
    const calls = async (): Promise<number> => {
      const text = await (await fetch(`${url}/metrics`)).text();
      const m = /^cosmos_function_handler_calls\{function="thumbnails\.thumbnail"\} (\d+)$/m.exec(text);
      return Number(m?.[1] ?? 0);
    };
    const before = await calls();
    const burst = 40;
    const answers = await Promise.all(
      Array.from({ length: burst }, (_, frame) =>
        call<{ status: string }>(
          'POST',
          '/v1/services/thumbnails/generate',
          { source: { sample: 'countdown', frames: 100, width: 320, height: 180, frame } },
          { Prefer: 'wait=30' },
        ),
      ),
    );
    expect(answers.map((a) => a.body.status)).toEqual(answers.map(() => 'succeeded'));
    const used = (await calls()) - before;
    expect(used).toBeGreaterThan(0);
    expect(used).toBeLessThan(burst);
  });

  it('/metrics shows the run: invocation wait and run times, worker time, executions by status, errors by class', async () => {
    const bad = await call<{ status: string; error: { code: string } }>(
      'POST',
      '/v1/services/thumbnails/generate',
      { source: { sample: 'countdown', frames: 10, width: 320, height: 180, frame: 20 } },
      { Prefer: 'wait=30' },
    );
    expect(bad.body.status).toBe('failed');
    const text = await (await fetch(`${url}/metrics`)).text();
    const value = (pattern: string): number => {
      const m = new RegExp(`^${pattern} ([0-9.e+-]+)$`, 'm').exec(text);
      return m ? Number(m[1]) : 0;
    };
    const encode = 'function="encoder.encodeChunk",pool="default"';
    expect(value(`cosmos_invocation_wait_seconds_count\\{${encode}\\}`)).toBeGreaterThanOrEqual(36);
    expect(value(`cosmos_invocation_run_seconds_count\\{${encode}\\}`)).toBeGreaterThanOrEqual(36);
    expect(value(`cosmos_invocation_run_seconds_sum\\{${encode}\\}`)).toBeGreaterThan(0);
    expect(value('cosmos_worker_busy_seconds_total\\{pool="default"\\}')).toBeGreaterThan(0);
    expect(value('cosmos_workers\\{pool="thumbnails"\\}')).toBeGreaterThanOrEqual(2);
    expect(value('cosmos_executions\\{status="succeeded"\\}')).toBeGreaterThanOrEqual(5);
    expect(value('cosmos_executions\\{status="failed"\\}')).toBeGreaterThanOrEqual(1);
    expect(value('cosmos_executions_finished_total\\{workflow="catalog.ingest",status="succeeded"\\}')).toBe(
      1,
    );
    expect(
      value('cosmos_invocation_failures_total\\{function="thumbnails.thumbnail",class="user"\\}'),
    ).toBeGreaterThanOrEqual(1);
    expect(value('cosmos_queue_messages\\{queue="workflow.events",state="completed"\\}')).toBeGreaterThan(0);
    expect(text).toMatch(/^cosmos_worker_utilisation\{pool="default"\} /m);
    expect(text).toMatch(/^cosmos_pool_slots\{pool="default",state="running"\} /m);
  });

  it("the README's ingest command succeeds and prints the output and the trace link", async () => {
    const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
    const line = /^npx cosmos call catalog ingest --wait --input '(.+)'$/m.exec(readme);
    expect(line).not.toBeNull();
    const r = cosmos(['call', 'catalog', 'ingest', '--wait', '--input', line![1]!, '--url', url]);
    const { code } = await r.exited;
    const text = r.output.join('\n');
    expect(code, text).toBe(0);
    const output = JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)) as Ingest['output'];
    expect(output.renditions.map((x) => [x.name, x.frames])).toEqual([
      ['180p', 96],
      ['120p', 96],
      ['90p', 96],
    ]);
    expect(text).toMatch(/trace: http:\/\/127\.0\.0\.1:\d+\/v1\/executions\/\S+\/trace/);
  });

  it('refuses a bad ladder with the failing paths', async () => {
    const r = await call<{ error: { code: string; details: { issues: { path: string }[] } } }>(
      'POST',
      '/v1/services/encoder/encode',
      {
        source: { sample: 'countdown', frames: 0, width: 320, height: 180 },
        ladder: [{ name: 'x', codec: 'mp3' }],
      },
    );
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('validation_failed');
    const paths = r.body.error.details.issues.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['ladder.0.codec', 'ladder.0.width']));
  });
});
