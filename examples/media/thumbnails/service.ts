import sharp from 'sharp';
import { z } from 'zod';
import { defineService, fn, NonRetryableError, rule, rules } from 'cosmos-platform';
import { countdownSvg } from '../lib/frames.js';

/**
 * Thumbnails for people waiting on a page (the latency-sensitive work of Netflix's Sagan): a warm pool, high
 * priority, and micro-batching, so a burst of requests shares few handler calls and no worker starts on the
 * request's path.
 */

const Frame = z.object({
  sample: z.literal('countdown'),
  frames: z.number().int().min(1).max(10_000),
  width: z.number().int().min(16).max(3840),
  height: z.number().int().min(16).max(2160),
  /** Which frame, from 0. */
  frame: z.number().int().min(0),
});

export const ThumbnailInput = z.object({
  source: Frame,
  width: z.number().int().min(16).max(640).default(160),
  quality: z.number().int().min(1).max(100).default(70),
});
type ThumbnailInput = z.output<typeof ThumbnailInput>;

export const ThumbnailOutput = z.object({
  width: z.number(),
  height: z.number(),
  bytes: z.number(),
  /** The thumbnail itself, small enough to travel inline. */
  dataUrl: z.string(),
});

const functions = {
  thumbnail: fn(
    {
      input: ThumbnailInput,
      output: ThumbnailOutput,
      pool: 'thumbnails',
      batch: { max: 32, waitMs: 5 },
      timeoutMs: 10_000,
      attempts: 2,
    },
    // A batch handler: one call renders every thumbnail gathered; a bad one fails alone.
    (inputs) =>
      Promise.all(
        inputs.map(async ({ source, width, quality }) => {
          try {
            if (source.frame >= source.frames)
              throw new NonRetryableError(`frame ${source.frame} is past the last (${source.frames - 1})`);
            const height = Math.max(2, Math.round((width * source.height) / source.width));
            const svg = Buffer.from(countdownSvg(source.frame, source.frames, source.width, source.height));
            const webp = await sharp(svg).resize(width, height).webp({ quality }).toBuffer();
            return {
              width,
              height,
              bytes: webp.length,
              dataUrl: `data:image/webp;base64,${webp.toString('base64')}`,
            };
          } catch (e) {
            return e instanceof Error ? e : new Error(String(e));
          }
        }),
      ),
  ),
};

const generate = rules<ThumbnailInput, { asked: boolean }>({
  initial: () => ({ asked: false }),
  rules: [
    rule('thumbnail', {
      match: (s) => !s.asked,
      action: (s, ctx) => {
        s.asked = true;
        ctx.invoke('thumbnail', ctx.input);
      },
      reaction: (_s, r, ctx) => ctx.complete(r.output),
    }),
  ],
});

export default defineService({
  name: 'thumbnails',
  owner: { team: 'artwork', contact: 'artwork@example.com' },
  description: 'Thumbnails of video frames, fast: warm workers, micro-batches, high priority',
  operations: {
    generate: {
      input: ThumbnailInput,
      output: ThumbnailOutput,
      workflow: 'generate',
      description: 'A thumbnail of one frame',
      // Ahead of a minute of throughput work by default; a caller may ask for up to ten minutes ahead.
      priority: { default: -60_000, min: -600_000, max: 0 },
    },
  },
  workflows: { generate },
  functions,
  pools: { thumbnails: { warm: 2 } },
});
