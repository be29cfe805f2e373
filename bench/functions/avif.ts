import { createHash } from 'node:crypto';
import { threadId } from 'node:worker_threads';
import sharp from 'sharp';
import { z } from 'zod';
import { fn } from '../../src/functions/define.js';

/**
 * The compute benchmark's function: render one frame of a generated animation and encode it to AVIF, all in
 * sharp (librsvg renders, libaom encodes). Real CPU work on real bytes, about 100–300 ms per frame at the
 * default size and effort.
 *
 * One invocation must use one core, so that the node's slots decide the parallelism: libvips (and through it
 * the AVIF encoder) runs with one thread. The setting is process-wide, so it holds for every worker thread
 * of the node; this module runs in each worker when the bundle loads. The libvips operation cache is off, so
 * no frame is ever served from a previous one.
 */
sharp.concurrency(1);
sharp.cache(false);

export const FrameSpec = z.object({
  frame: z.number().int().nonnegative(),
  width: z.number().int().min(16).max(3840).default(640),
  height: z.number().int().min(16).max(2160).default(360),
  /** AVIF quality (1–100) and libaom effort (0 fastest – 9 slowest). */
  quality: z.number().int().min(1).max(100).default(50),
  effort: z.number().int().min(0).max(9).default(3),
  /** Return the encoded image itself (base64), not only its size and hash. */
  keep: z.boolean().default(false),
});
export type FrameSpec = z.input<typeof FrameSpec>;

export const EncodedFrame = z.object({
  frame: z.number(),
  width: z.number(),
  height: z.number(),
  /** Size of the AVIF file. */
  bytes: z.number().int().positive(),
  /** First 16 hex digits of its SHA-256. */
  sha256: z.string(),
  /** Time in the handler: SVG to raw pixels, and raw pixels to AVIF. */
  renderMs: z.number(),
  encodeMs: z.number(),
  /** Epoch milliseconds (with fractions) when the handler started and ended, and the thread it ran on. */
  startedAt: z.number(),
  endedAt: z.number(),
  thread: z.number(),
  avif: z.string().optional(),
});
export type EncodedFrame = z.output<typeof EncodedFrame>;

/** Frame `i` of the animation: a gradient that cycles through hues, twelve orbiting discs, the frame number. */
export function frameSvg(i: number, width: number, height: number): string {
  const t = i / 24;
  const hue = (i * 3) % 360;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">`,
    '<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">',
    `<stop offset="0" stop-color="hsl(${hue},70%,35%)"/>`,
    `<stop offset="1" stop-color="hsl(${(hue + 140) % 360},70%,60%)"/>`,
    '</linearGradient></defs>',
    `<rect width="${width}" height="${height}" fill="url(#g)"/>`,
  ];
  for (let k = 0; k < 12; k++) {
    const x = width / 2 + Math.cos(t * (1 + k / 7) + k) * width * 0.4;
    const y = height / 2 + Math.sin(t * 1.3 + k * 2) * height * 0.38;
    const r = (height / 18) * (1 + k / 4);
    parts.push(
      `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${r.toFixed(1)}" ` +
        `fill="hsl(${(k * 30 + i * 5) % 360},80%,55%)" fill-opacity="0.7"/>`,
    );
  }
  const size = Math.round(height / 7);
  parts.push(
    `<text x="${Math.round(size / 2)}" y="${size + 4}" font-family="sans-serif" font-size="${size}" ` +
      `fill="white">frame ${i}</text>`,
    '</svg>',
  );
  return parts.join('');
}

export const encodeFrame = fn(
  {
    input: FrameSpec,
    output: EncodedFrame,
    pool: 'compute',
    shape: { cpu: 1, memoryMb: 512 },
    // One frame takes well under a second; the margin is for a machine shared with other work.
    timeoutMs: 30_000,
    // A failed encode is a bug, not bad luck: the benchmark wants to see it, not a retry.
    attempts: 1,
  },
  async (input) => {
    const t0 = performance.now();
    const { data, info } = await sharp(Buffer.from(frameSvg(input.frame, input.width, input.height)))
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const t1 = performance.now();
    const avif = await sharp(data, {
      raw: { width: info.width, height: info.height, channels: info.channels },
    })
      .avif({ quality: input.quality, effort: input.effort })
      .toBuffer();
    const t2 = performance.now();
    return {
      frame: input.frame,
      width: info.width,
      height: info.height,
      bytes: avif.length,
      sha256: createHash('sha256').update(avif).digest('hex').slice(0, 16),
      renderMs: t1 - t0,
      encodeMs: t2 - t1,
      startedAt: performance.timeOrigin + t0,
      endedAt: performance.timeOrigin + performance.now(),
      thread: threadId,
      ...(input.keep && { avif: avif.toString('base64') }),
    };
  },
);
