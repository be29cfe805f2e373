import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { z } from 'zod';
import { defineService, fn, NonRetryableError, rule, rules } from 'cosmos-platform';
import { animation, decodeSource, readChunk, Source, SplitInfo, writeChunks } from '../lib/frames.js';
import { joinAnimatedWebp, webpFrames } from '../lib/webp.js';

/**
 * The encoding service (like Netflix's VES): split a source into chunks, encode every chunk for every rung of
 * a ladder in parallel, assemble each rung, then index the result (a thumbnail sprite and a manifest).
 */

export const Rung = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/),
  width: z.number().int().min(16).max(3840).multipleOf(2),
  height: z.number().int().min(16).max(2160).multipleOf(2),
  codec: z.enum(['webp', 'avif']),
  quality: z.number().int().min(1).max(100),
});
export type Rung = z.infer<typeof Rung>;

export const EncodeInput = z.object({
  source: Source,
  ladder: z
    .array(Rung)
    .min(1)
    .max(8)
    .refine((l) => new Set(l.map((r) => r.name)).size === l.length, 'rung names must be unique'),
  chunkFrames: z.number().int().min(1).max(1_000).default(8),
});
type EncodeInput = z.output<typeof EncodeInput>;

const Rendition = z.object({
  name: z.string(),
  codec: z.enum(['webp', 'avif']),
  width: z.number(),
  height: z.number(),
  frames: z.number(),
  bytes: z.number(),
  /** The animated WebP, or for AVIF a JSON playlist of its segments. */
  ref: z.string(),
  /** AVIF only: one filmstrip image per chunk (frames stacked top to bottom). */
  segments: z.array(z.string()).optional(),
});

export const EncodeOutput = z.object({
  source: z.object({
    width: z.number(),
    height: z.number(),
    frames: z.number(),
    fps: z.number(),
    chunkFrames: z.number(),
    /** Raw RGB chunks of the source: the reference for quality measurement. */
    chunks: z.array(z.string()),
  }),
  renditions: z.array(Rendition),
  index: z.object({
    sprite: z.string(),
    manifest: z.string(),
    spriteWidth: z.number(),
    spriteHeight: z.number(),
    tiles: z.number(),
  }),
});
export type EncodeOutput = z.infer<typeof EncodeOutput>;

/** Source pixels one encode may decode at once: beyond this a source is refused rather than swapping. */
const MAX_SOURCE_BYTES = 1024 ** 3;
const TILE_WIDTH = 160;

const functions = {
  split: fn(
    {
      input: z.object({
        source: Source,
        chunkFrames: z.number().int(),
        file: z.string().optional(),
        frames: z.array(z.string()).optional(),
      }),
      output: SplitInfo,
      files: { inputs: ['file', 'frames'] },
      timeoutMs: 120_000,
      shape: { memoryMb: 2048 },
    },
    async ({ source, chunkFrames }, ctx) => {
      if ('sample' in source && source.frames * source.width * source.height * 3 > MAX_SOURCE_BYTES)
        throw new NonRetryableError(
          'the sample is larger than 1 GiB of pixels; ask for fewer or smaller frames',
        );
      const decoded = await decodeSource(source, ctx.files.inputs);
      ctx.log('info', `decoded ${decoded.frames.length} frames of ${decoded.width}x${decoded.height}`);
      const chunks = await writeChunks(decoded.frames, chunkFrames, ctx.files.outDir);
      return {
        width: decoded.width,
        height: decoded.height,
        frames: decoded.frames.length,
        fps: decoded.fps,
        chunkFrames,
        chunks,
      };
    },
  ),

  encodeChunk: fn(
    {
      input: z.object({
        chunk: z.string(),
        width: z.number().int(),
        height: z.number().int(),
        fps: z.number(),
        rung: Rung,
      }),
      output: z.object({ frames: z.number().int(), bytes: z.number().int() }),
      files: { inputs: ['chunk'] },
      timeoutMs: 120_000,
      attempts: 3,
    },
    async ({ width, height, fps, rung }, ctx) => {
      const frames = await readChunk(ctx.files.inputs.chunk!, width, height);
      const scaled = await Promise.all(
        frames.map((f) =>
          sharp(f, { raw: { width, height, channels: 3 } })
            .resize(rung.width, rung.height, { fit: 'fill' })
            .raw()
            .toBuffer(),
        ),
      );
      const strip = animation(scaled, rung.width, rung.height);
      const delay = Math.round(1000 / fps);
      const out =
        rung.codec === 'webp'
          ? await strip
              .webp({ quality: rung.quality, effort: 2, loop: 0, delay: scaled.map(() => delay) })
              .toBuffer()
          : // sharp writes no AVIF sequences: an AVIF chunk is one image with the frames stacked.
            await sharp(Buffer.concat(scaled), {
              raw: { width: rung.width, height: rung.height * scaled.length, channels: 3 },
            })
              .avif({ quality: rung.quality, effort: 2 })
              .toBuffer();
      await writeFile(join(ctx.files.outDir, `chunk.${rung.codec}`), out);
      ctx.log('info', `${rung.name}: ${frames.length} frames, ${out.length} bytes`);
      return { frames: frames.length, bytes: out.length };
    },
  ),

  assemble: fn(
    {
      input: z.object({ parts: z.array(z.string()).min(1), rung: Rung, frames: z.number().int() }),
      output: z.object({ frames: z.number().int(), bytes: z.number().int(), file: z.string() }),
      files: { inputs: ['parts'] },
      timeoutMs: 120_000,
    },
    async ({ parts, rung, frames }, ctx) => {
      const dir = ctx.files.inputs.parts!;
      const names = (await readdir(dir)).sort();
      if (rung.codec === 'webp') {
        const joined = joinAnimatedWebp(await Promise.all(names.map((n) => readFile(join(dir, n)))));
        const count = webpFrames(joined);
        if (count !== frames) throw new NonRetryableError(`assembled ${count} frames, expected ${frames}`);
        const file = `${rung.name}.webp`;
        await writeFile(join(ctx.files.outDir, file), joined);
        return { frames: count, bytes: joined.length, file };
      }
      const file = `${rung.name}.json`;
      const playlist = {
        codec: 'avif',
        layout: 'filmstrip',
        width: rung.width,
        pageHeight: rung.height,
        frames,
        segments: parts,
      };
      await writeFile(join(ctx.files.outDir, file), JSON.stringify(playlist, null, 2));
      let bytes = 0;
      for (const n of names) bytes += (await readFile(join(dir, n))).length;
      return { frames, bytes, file };
    },
  ),

  index: fn(
    {
      input: z.object({
        chunks: z.array(z.string()).min(1),
        width: z.number().int(),
        height: z.number().int(),
        manifest: z.record(z.string(), z.unknown()),
      }),
      output: z.object({ spriteWidth: z.number(), spriteHeight: z.number(), tiles: z.number() }),
      files: { inputs: ['chunks'] },
      timeoutMs: 120_000,
    },
    async ({ width, height, manifest }, ctx) => {
      // One tile per chunk: its first frame.
      const dir = ctx.files.inputs.chunks!;
      const names = (await readdir(dir)).sort();
      const tileHeight = Math.round((TILE_WIDTH * height) / width);
      const columns = Math.ceil(Math.sqrt(names.length));
      const rows = Math.ceil(names.length / columns);
      const tiles = await Promise.all(
        names.map(async (n, i) => {
          const [first] = await readChunk(join(dir, n), width, height);
          const input = await sharp(first, { raw: { width, height, channels: 3 } })
            .resize(TILE_WIDTH, tileHeight)
            .png()
            .toBuffer();
          return { input, left: (i % columns) * TILE_WIDTH, top: Math.floor(i / columns) * tileHeight };
        }),
      );
      const sprite = await sharp({
        create: { width: columns * TILE_WIDTH, height: rows * tileHeight, channels: 3, background: '#000' },
      })
        .composite(tiles)
        .webp({ quality: 80 })
        .toBuffer();
      await writeFile(join(ctx.files.outDir, 'sprite.webp'), sprite);
      const sheet = { columns, rows, tileWidth: TILE_WIDTH, tileHeight, tiles: names.length };
      await writeFile(
        join(ctx.files.outDir, 'manifest.json'),
        JSON.stringify({ ...manifest, sprite: sheet }, null, 2),
      );
      return { spriteWidth: columns * TILE_WIDTH, spriteHeight: rows * tileHeight, tiles: names.length };
    },
  ),
};

interface EncodeState {
  asked: { split: boolean; encode: boolean; index: boolean };
  split?: z.infer<typeof SplitInfo> & { refs: string[] };
  /** Per rung, the encoded chunk of each index (null until it is back). */
  encoded: Record<string, (string | null)[]>;
  assembling: Record<string, boolean>;
  renditions: Record<string, z.infer<typeof Rendition>>;
}

const ext = (r: Rung): string => (r.codec === 'webp' ? 'webp' : 'avif');

const encode = rules<EncodeInput, EncodeState>({
  initial: () => ({
    asked: { split: false, encode: false, index: false },
    encoded: {},
    assembling: {},
    renditions: {},
  }),
  rules: [
    rule('split', {
      match: (s) => !s.asked.split,
      action: (s, ctx) => {
        s.asked.split = true;
        const src = ctx.input.source;
        ctx.invoke('split', {
          source: src,
          chunkFrames: ctx.input.chunkFrames,
          ...('file' in src && { file: src.file }),
          ...('frames' in src && Array.isArray(src.frames) && { frames: src.frames }),
        });
      },
      reaction: (s, r, ctx) => {
        const info = r.output as z.infer<typeof SplitInfo>;
        s.split = { ...info, refs: info.chunks.map((c) => r.files![c.file]!) };
        for (const rung of ctx.input.ladder) s.encoded[rung.name] = info.chunks.map(() => null);
        ctx.log(`split into ${info.chunks.length} chunks of up to ${info.chunkFrames} frames`);
      },
    }),
    rule('encode', {
      match: (s) => s.split !== undefined && !s.asked.encode,
      action: (s, ctx) => {
        s.asked.encode = true;
        const { width, height, fps, refs } = s.split!;
        for (const rung of ctx.input.ladder)
          refs.forEach((chunk, i) =>
            ctx.invoke('encodeChunk', { chunk, width, height, fps, rung }, { key: `${rung.name}/${i}` }),
          );
      },
      reaction: (s, r, ctx) => {
        const [name, i] = r.key!.split('/') as [string, string];
        const rung = ctx.input.ladder.find((l) => l.name === name)!;
        s.encoded[name]![Number(i)] = r.files![`chunk.${ext(rung)}`]!;
      },
    }),
    // Each rung is assembled as soon as its own chunks are back, not when the whole ladder is.
    rule('assemble', {
      match: (s) =>
        Object.entries(s.encoded).some(([n, parts]) => !s.assembling[n] && parts.every((p) => p !== null)),
      action: (s, ctx) => {
        for (const rung of ctx.input.ladder) {
          const parts = s.encoded[rung.name]!;
          if (s.assembling[rung.name] || parts.some((p) => p === null)) continue;
          s.assembling[rung.name] = true;
          ctx.invoke('assemble', { parts, rung, frames: s.split!.frames }, { key: rung.name });
        }
      },
      reaction: (s, r, ctx) => {
        const rung = ctx.input.ladder.find((l) => l.name === r.key)!;
        const out = r.output as { frames: number; bytes: number; file: string };
        s.renditions[rung.name] = {
          name: rung.name,
          codec: rung.codec,
          width: rung.width,
          height: rung.height,
          frames: out.frames,
          bytes: out.bytes,
          ref: r.files![out.file]!,
          ...(rung.codec === 'avif' && { segments: s.encoded[rung.name] as string[] }),
        };
      },
    }),
    rule('index', {
      match: (s) =>
        !s.asked.index &&
        s.split !== undefined &&
        Object.keys(s.renditions).length === Object.keys(s.encoded).length,
      action: (s, ctx) => {
        s.asked.index = true;
        const { width, height, frames, fps } = s.split!;
        const renditions = ctx.input.ladder.map((l) => s.renditions[l.name]!);
        ctx.invoke('index', {
          chunks: s.split!.refs,
          width,
          height,
          manifest: { source: { width, height, frames, fps }, renditions },
        });
      },
      reaction: (s, r, ctx) => {
        const out = r.output as { spriteWidth: number; spriteHeight: number; tiles: number };
        const { width, height, frames, fps, chunkFrames, refs } = s.split!;
        ctx.complete({
          source: { width, height, frames, fps, chunkFrames, chunks: refs },
          renditions: ctx.input.ladder.map((l) => s.renditions[l.name]!),
          index: { sprite: r.files!['sprite.webp']!, manifest: r.files!['manifest.json']!, ...out },
        } satisfies EncodeOutput);
      },
    }),
  ],
});

export default defineService({
  name: 'encoder',
  owner: { team: 'encoding', contact: 'encoding@example.com' },
  description:
    'Splits a video into chunks, encodes each chunk for every rung of a ladder in parallel, assembles and indexes the renditions',
  operations: {
    encode: {
      input: EncodeInput,
      output: EncodeOutput,
      workflow: 'encode',
      description: 'Encode a source over a ladder',
    },
  },
  workflows: { encode },
  functions,
});
