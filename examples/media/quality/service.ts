import sharp from 'sharp';
import { z } from 'zod';
import { defineService, fn, NonRetryableError, rule, rules } from 'cosmos-platform';
import { CHANNELS, readChunk } from '../lib/frames.js';
import { mean, psnr, ssim } from '../lib/quality.js';

/**
 * The quality service (like Netflix's VQS): full-reference metrics between a rendition and its source,
 * computed per chunk in parallel and assembled per metric. Metrics fail alone: when one cannot be computed the
 * others still come back, and the output says which failed and why.
 */

const Metric = z.enum(['psnr', 'ssim']);
type Metric = z.infer<typeof Metric>;

export const MeasureInput = z.object({
  reference: z.object({
    /** Raw RGB chunks of the source (encoder.encode's `source.chunks`). */
    chunks: z.array(z.string().startsWith('sha256:')).min(1),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    chunkFrames: z.number().int().positive(),
  }),
  rendition: z.object({
    name: z.string(),
    codec: z.enum(['webp', 'avif']),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    ref: z.string().startsWith('sha256:'),
    segments: z.array(z.string()).optional(),
  }),
  metrics: z.array(Metric).min(1).default(['psnr', 'ssim']),
});
type MeasureInput = z.output<typeof MeasureInput>;

const MetricResult = z.union([
  z.object({ mean: z.number(), min: z.number(), perChunk: z.array(z.number()) }),
  z.object({ error: z.object({ code: z.string(), message: z.string() }) }),
]);

export const MeasureOutput = z.object({
  rendition: z.string(),
  metrics: z.record(z.string(), MetricResult),
  /** Metrics that could not be computed: the partial failure, named. */
  failed: z.array(z.string()),
});

const functions = {
  measureChunk: fn(
    {
      input: z.object({
        metric: Metric,
        chunk: z.string(),
        /** The rendition file (animated WebP) or this chunk's AVIF segment. */
        rendition: z.string(),
        layout: z.enum(['animated', 'filmstrip']),
        /** First frame of the chunk in the rendition file (0 for a segment). */
        offset: z.number().int().min(0),
        width: z.number().int(),
        height: z.number().int(),
      }),
      output: z.object({ value: z.number(), frames: z.number() }),
      files: { inputs: ['chunk', 'rendition'] },
      timeoutMs: 120_000,
      attempts: 2,
    },
    async ({ metric, layout, offset, width, height }, ctx) => {
      const reference = await readChunk(ctx.files.inputs.chunk!, width, height);
      const n = reference.length;
      const file = ctx.files.inputs.rendition!;
      // The rendition is scaled up to the source's size, as full-reference metrics compare at source size.
      const decoded =
        layout === 'animated'
          ? await sharp(file, { page: offset, pages: n })
              .metadata()
              .then(async (m) => {
                if ((m.pages ?? 1) < n)
                  throw new NonRetryableError(`rendition has no frames ${offset}..${offset + n - 1}`);
                return sharp(file, { page: offset, pages: n })
                  .removeAlpha()
                  .raw()
                  .toBuffer({ resolveWithObject: true });
              })
          : await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const rw = decoded.info.width;
      const rh = decoded.info.height / n;
      const frameBytes = rw * rh * CHANNELS;
      const values: number[] = [];
      for (let i = 0; i < n; i++) {
        const frame = decoded.data.subarray(i * frameBytes, (i + 1) * frameBytes);
        const up = await sharp(frame, { raw: { width: rw, height: rh, channels: CHANNELS } })
          .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
          .raw()
          .toBuffer();
        values.push(metric === 'psnr' ? psnr(reference[i]!, up) : ssim(reference[i]!, up, width, height));
      }
      return { value: mean(values), frames: n };
    },
  ),
};

interface MeasureState {
  asked: boolean;
  /** metric → per-chunk values (null until back). */
  values: Record<string, (number | null)[]>;
  failed: Record<string, { code: string; message: string }>;
}

const measure = rules<MeasureInput, MeasureState>({
  initial: (input) => ({
    asked: false,
    values: Object.fromEntries(input.metrics.map((m) => [m, input.reference.chunks.map(() => null)])),
    failed: {},
  }),
  rules: [
    rule('measure', {
      match: (s) => !s.asked,
      action: (s, ctx) => {
        s.asked = true;
        const { reference, rendition } = ctx.input;
        for (const metric of ctx.input.metrics)
          reference.chunks.forEach((chunk, i) => {
            const segment = rendition.codec === 'avif' ? rendition.segments?.[i] : undefined;
            ctx.invoke(
              'measureChunk',
              {
                metric,
                chunk,
                rendition: segment ?? rendition.ref,
                layout: segment ? 'filmstrip' : 'animated',
                offset: segment ? 0 : i * reference.chunkFrames,
                width: reference.width,
                height: reference.height,
              },
              { key: `${metric}/${i}` },
            );
          });
      },
      reaction: (s, r) => {
        const [metric, i] = r.key!.split('/') as [Metric, string];
        s.values[metric]![Number(i)] = (r.output as { value: number }).value;
      },
      // A chunk that cannot be measured fails its metric only; the other metrics carry on.
      error: (s, e, ctx) => {
        const [metric, i] = e.key!.split('/') as [Metric, string];
        ctx.log(`${metric} of chunk ${i} failed: ${e.message}`, { code: e.code });
        // The metric is failed as a whole; the report stops waiting for its other chunks.
        s.failed[metric] ??= { code: e.code, message: `chunk ${i}: ${e.message}` };
      },
    }),
    rule('report', {
      match: (s) =>
        s.asked && Object.entries(s.values).every(([m, v]) => m in s.failed || v.every((x) => x !== null)),
      action: (s, ctx) => {
        const metrics: Record<string, z.infer<typeof MetricResult>> = {};
        for (const [m, v] of Object.entries(s.values)) {
          const done = v as number[];
          metrics[m] = s.failed[m]
            ? { error: s.failed[m] }
            : { mean: mean(done), min: Math.min(...done), perChunk: done };
        }
        ctx.complete({ rendition: ctx.input.rendition.name, metrics, failed: Object.keys(s.failed) });
      },
    }),
  ],
});

export default defineService({
  name: 'quality',
  owner: { team: 'video-quality', contact: 'quality@example.com' },
  description: 'PSNR and SSIM of a rendition against its source, per chunk, assembled per metric',
  operations: {
    measure: {
      input: MeasureInput,
      output: MeasureOutput,
      workflow: 'measure',
      description: 'Measure a rendition against its source',
    },
  },
  workflows: { measure },
  functions,
});
