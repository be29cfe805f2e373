import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { defineService, fn, rule, rules } from 'cosmos-platform';
import type { EncodeOutput } from '../encoder/service.js';
import { Source } from '../lib/frames.js';

/**
 * The orchestrator (like Netflix's Tapas): a service made of other services. An ingest encodes the source
 * with `encoder`, measures every rendition with `quality`, then records a catalog entry. Its trace holds the
 * child executions of both.
 */

const Rung = z.object({
  name: z.string(),
  width: z.number().int(),
  height: z.number().int(),
  codec: z.enum(['webp', 'avif']),
  quality: z.number().int(),
});

const DEFAULT_LADDER = [
  { name: '180p', width: 320, height: 180, codec: 'webp', quality: 80 },
  { name: '120p', width: 214, height: 120, codec: 'webp', quality: 70 },
  { name: '90p', width: 160, height: 90, codec: 'webp', quality: 60 },
] as const;

export const IngestInput = z.object({
  title: z.string().min(1).max(200).default('countdown sample'),
  source: Source,
  ladder: z
    .array(Rung)
    .min(1)
    .max(8)
    .default([...DEFAULT_LADDER]),
  chunkFrames: z.number().int().min(1).max(1_000).default(8),
});
type IngestInput = z.output<typeof IngestInput>;

// The encoder's contract, as a type only: nothing of the encoder's module is loaded here.
type Encoded = EncodeOutput;

export const IngestOutput = z.object({
  title: z.string(),
  entry: z.string(),
  renditions: z.array(z.record(z.string(), z.unknown())),
  quality: z.record(z.string(), z.unknown()),
  index: z.record(z.string(), z.unknown()),
});

const functions = {
  record: fn(
    {
      input: z.object({ title: z.string(), entry: z.record(z.string(), z.unknown()) }),
      output: z.object({ file: z.string() }),
      timeoutMs: 10_000,
      files: { inputs: [] },
    },
    async ({ title, entry }, ctx) => {
      await writeFile(join(ctx.files.outDir, 'entry.json'), JSON.stringify({ title, ...entry }, null, 2));
      return { file: 'entry.json' };
    },
  ),
};

interface IngestState {
  asked: { encode: boolean; measure: boolean; record: boolean };
  encoded?: Encoded;
  quality: Record<string, unknown>;
}

const ingest = rules<IngestInput, IngestState>({
  initial: () => ({ asked: { encode: false, measure: false, record: false }, quality: {} }),
  rules: [
    rule('encode', {
      match: (s) => !s.asked.encode,
      action: (s, ctx) => {
        s.asked.encode = true;
        const { source, ladder, chunkFrames } = ctx.input;
        ctx.call('encoder', 'encode', { source, ladder, chunkFrames });
      },
      reaction: (s, r) => {
        s.encoded = r.output as Encoded;
      },
    }),
    rule('measure', {
      match: (s) => s.encoded !== undefined && !s.asked.measure,
      action: (s, ctx) => {
        s.asked.measure = true;
        const { chunks, width, height, chunkFrames } = s.encoded!.source;
        for (const rendition of s.encoded!.renditions)
          ctx.call(
            'quality',
            'measure',
            { reference: { chunks, width, height, chunkFrames }, rendition },
            { key: rendition.name },
          );
      },
      reaction: (s, r) => {
        s.quality[r.key!] = r.output;
      },
      // A rendition that cannot be measured is recorded as such; the entry is still made.
      error: (s, e) => {
        s.quality[e.key!] = { error: { code: e.code, message: e.message } };
      },
    }),
    rule('record', {
      match: (s) =>
        !s.asked.record && s.encoded !== undefined && s.encoded.renditions.every((r) => r.name in s.quality),
      action: (s, ctx) => {
        s.asked.record = true;
        const e = s.encoded!;
        ctx.invoke('record', {
          title: ctx.input.title,
          entry: {
            source: { ...e.source, chunks: undefined },
            renditions: e.renditions,
            quality: s.quality,
            index: e.index,
          },
        });
      },
      reaction: (s, r, ctx) => {
        const e = s.encoded!;
        ctx.complete({
          title: ctx.input.title,
          entry: r.files!['entry.json']!,
          renditions: e.renditions.map(({ segments: _segments, ...rest }) => rest),
          quality: s.quality,
          index: e.index,
        });
      },
    }),
  ],
});

export default defineService({
  name: 'catalog',
  owner: { team: 'content-platform', contact: 'content@example.com' },
  description: 'Ingests a title: encode, measure every rendition, record a catalog entry',
  calls: ['encoder', 'quality'],
  operations: {
    ingest: {
      input: IngestInput,
      output: IngestOutput,
      workflow: 'ingest',
      description: 'Encode, measure and record a title',
    },
  },
  workflows: { ingest },
  functions,
});
