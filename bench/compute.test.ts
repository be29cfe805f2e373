import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { FunctionRuntime, type InvocationResult } from '../src/functions/runtime.js';
import { Queue } from '../src/queue/queue.js';
import { openStore } from '../src/store/open.js';
import type { Store } from '../src/store/store.js';
import { encodeFrame, type EncodedFrame } from './functions/avif.js';

const MODULE = fileURLToPath(new URL('./functions/avif.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

describe('compute benchmark function', () => {
  const dirs: string[] = [];
  let store: Store | undefined;
  let queue: Queue | undefined;
  let runtime: FunctionRuntime | undefined;

  afterEach(async () => {
    await runtime?.stop();
    await queue?.close();
    await store?.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('encodes a generated frame to a decodable AVIF of the requested size, through the runtime', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cosmos-compute-test-'));
    dirs.push(dir);
    // The bundle imports sharp from node_modules, so it must be written under the project.
    mkdirSync(join(ROOT, '.cosmos'), { recursive: true });
    const bundleDir = mkdtempSync(join(ROOT, '.cosmos', 'test-compute-'));
    dirs.push(bundleDir);
    store = await openStore({ kind: 'sqlite', path: join(dir, 'cosmos.db') });
    queue = new Queue(store);
    runtime = new FunctionRuntime(queue, { capacity: 1, warm: { compute: 1 }, bundleDir, pollMs: 100 });
    const results: InvocationResult[] = [];
    runtime.onResult((r) => results.push(r));
    await runtime.register('encodeFrame', encodeFrame, { module: MODULE });
    await runtime.start();

    const { id } = await runtime.invoke('encodeFrame', { frame: 7, width: 320, height: 180, keep: true });
    const end = Date.now() + 8_000;
    while (!results.some((r) => r.messageId === id) && Date.now() < end)
      await new Promise((r) => setTimeout(r, 20));

    const result = results.find((r) => r.messageId === id);
    expect(result, 'no result within 8 s').toBeDefined();
    expect(result!.error).toBeUndefined();
    expect(result).toMatchObject({ ok: true, final: true, function: 'encodeFrame' });
    const out = result!.output as EncodedFrame;
    expect(out).toMatchObject({ frame: 7, width: 320, height: 180 });
    const avif = Buffer.from(out.avif!, 'base64');
    expect(avif.length).toBe(out.bytes);
    // An ISO-BMFF file whose brand is AVIF, that sharp decodes back to the frame's size.
    expect(avif.subarray(4, 12).toString('latin1')).toBe('ftypavif');
    const meta = await sharp(avif).metadata();
    expect(meta).toMatchObject({ format: 'heif', compression: 'av1', width: 320, height: 180 });
    const pixels = await sharp(avif).raw().toBuffer({ resolveWithObject: true });
    expect(pixels.info).toMatchObject({ width: 320, height: 180 });
    // It ran on a worker of the compute pool, which was warm: no worker started on the invocation path.
    expect(runtime.poolStats()['thread:compute']).toMatchObject({ live: 1, startedOnInvocation: 0 });
  });
});
