import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { NonRetryableError } from 'cosmos-platform';
import { z } from 'zod';

/**
 * Video in these examples is a sequence of RGB frames. Between functions it travels as chunks: one blob per
 * chunk holding its frames' raw pixels back to back (`frames × width × height × 3` bytes), so a chunk is
 * read without decoding and every rung of the ladder starts from the same pixels.
 */
export const CHANNELS = 3;

const Dimension = z.number().int().min(16).max(3840);

/** Where frames come from: a generated countdown, a folder of images, or one animated WebP/GIF. */
export const Source = z.union([
  z.object({
    sample: z.literal('countdown'),
    frames: z.number().int().min(1).max(10_000),
    width: Dimension,
    height: Dimension,
    fps: z.number().int().min(1).max(120).default(24),
  }),
  z.object({
    /** Blob references of image files (PNG, JPEG, WebP…), in frame order. */
    frames: z.array(z.string().startsWith('sha256:')).min(1).max(10_000),
    fps: z.number().int().min(1).max(120).default(24),
  }),
  z.object({
    /** Blob reference of an animated WebP or GIF. */
    file: z.string().startsWith('sha256:'),
  }),
]);
export type Source = z.output<typeof Source>;

/** What a split found: the frames' geometry and the chunks they were cut into (blob refs come with it). */
export const SplitInfo = z.object({
  width: z.number().int(),
  height: z.number().int(),
  frames: z.number().int(),
  fps: z.number(),
  chunkFrames: z.number().int(),
  /** File names of the chunks in the function's output folder, in order. */
  chunks: z.array(z.object({ file: z.string(), start: z.number().int(), frames: z.number().int() })),
});
export type SplitInfo = z.infer<typeof SplitInfo>;

const DIGIT_SEGMENTS = [
  'abcdef',
  'bc',
  'abdeg',
  'abcdg',
  'bcfg',
  'acdfg',
  'acdefg',
  'abc',
  'abcdefg',
  'abcdfg',
] as const;

/** A number drawn as seven-segment digits: no fonts needed, so every machine renders the same pixels. */
function digits(n: number, x: number, y: number, h: number): string {
  const w = h / 2;
  const t = Math.max(2, h / 10);
  const seg: Record<string, [number, number, number, number]> = {
    a: [t, 0, w - 2 * t, t],
    b: [w - t, t, t, h / 2 - t],
    c: [w - t, h / 2, t, h / 2 - t],
    d: [t, h - t, w - 2 * t, t],
    e: [0, h / 2, t, h / 2 - t],
    f: [0, t, t, h / 2 - t],
    g: [t, h / 2 - t / 2, w - 2 * t, t],
  };
  return String(n)
    .split('')
    .map((d, i) =>
      [...DIGIT_SEGMENTS[Number(d)]!]
        .map((s) => {
          const [sx, sy, sw, sh] = seg[s]!;
          return `<rect x="${x + i * (w + t * 2) + sx}" y="${y + sy}" width="${sw}" height="${sh}" fill="#fff"/>`;
        })
        .join(''),
    )
    .join('');
}

/** Frame `i` of the countdown sample as SVG: a moving ball, a turning bar, and the frames left. */
export function countdownSvg(i: number, total: number, width: number, height: number): string {
  const t = total <= 1 ? 0 : i / (total - 1);
  const hue = Math.round(220 - 180 * t);
  const r = Math.round(Math.min(width, height) / 8);
  const cx = Math.round(r + (width - 2 * r) * t);
  const cy = Math.round(height / 2 + (height / 4) * Math.sin(t * Math.PI * 4));
  const angle = Math.round(360 * t * 2);
  const dh = Math.round(height / 4);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">
<stop offset="0" stop-color="hsl(${hue},70%,35%)"/><stop offset="1" stop-color="hsl(${(hue + 60) % 360},70%,15%)"/>
</linearGradient></defs>
<rect width="100%" height="100%" fill="url(#g)"/>
<rect x="${width / 2 - width / 3}" y="${height / 2 - 4}" width="${(width * 2) / 3}" height="8" fill="#ffd34d" transform="rotate(${angle} ${width / 2} ${height / 2})"/>
<circle cx="${cx}" cy="${cy}" r="${r}" fill="#ff5a5f" stroke="#fff" stroke-width="3"/>
${digits(total - i, Math.round(width / 20), Math.round(height / 12), dh)}
</svg>`;
}

/** Raw RGB pixels of an image file or SVG, fitted to width × height. */
export async function rawFrame(input: string | Buffer, width: number, height: number): Promise<Buffer> {
  return sharp(input)
    .resize(width, height, { fit: 'cover' })
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer();
}

/** All frames of a source, decoded to raw RGB, with their geometry. */
export async function decodeSource(
  source: Source,
  files: Record<string, string>,
): Promise<{ width: number; height: number; fps: number; frames: Buffer[] }> {
  if ('sample' in source) {
    const frames: Buffer[] = [];
    for (let i = 0; i < source.frames; i++)
      frames.push(
        await rawFrame(
          Buffer.from(countdownSvg(i, source.frames, source.width, source.height)),
          source.width,
          source.height,
        ),
      );
    return { width: source.width, height: source.height, fps: source.fps, frames };
  }
  if ('frames' in source) {
    const dir = files.frames!;
    const names = (await readdir(dir)).sort();
    const first = await sharp(join(dir, names[0]!))
      .metadata()
      .catch(() => undefined);
    if (!first?.width || !first.height)
      throw new NonRetryableError('the first frame is not an image sharp can read');
    const width = first.width - (first.width % 2);
    const height = first.height - (first.height % 2);
    const frames = await Promise.all(names.map((n) => rawFrame(join(dir, n), width, height)));
    return { width, height, fps: source.fps, frames };
  }
  const file = files.file!;
  const meta = await sharp(file, { pages: -1 })
    .metadata()
    .catch(() => undefined);
  if (!meta?.width || !meta.pageHeight || !meta.pages)
    throw new NonRetryableError('source.file is not an animated WebP or GIF sharp can read');
  const { width, pageHeight: height, pages } = meta;
  const all = await sharp(file, { pages: -1 }).removeAlpha().toColourspace('srgb').raw().toBuffer();
  const size = width * height * CHANNELS;
  const frames = Array.from({ length: pages }, (_, i) => all.subarray(i * size, (i + 1) * size));
  const delay = meta.delay?.[0] ?? 40;
  return { width, height, fps: Math.round(1000 / Math.max(1, delay)), frames };
}

/** Writes the frames as chunk files in `outDir` and describes them. */
export async function writeChunks(
  frames: Buffer[],
  chunkFrames: number,
  outDir: string,
): Promise<SplitInfo['chunks']> {
  const chunks: SplitInfo['chunks'] = [];
  for (let start = 0, n = 0; start < frames.length; start += chunkFrames, n++) {
    const part = frames.slice(start, start + chunkFrames);
    const file = `chunk-${String(n).padStart(4, '0')}.rgb`;
    await writeFile(join(outDir, file), Buffer.concat(part));
    chunks.push({ file, start, frames: part.length });
  }
  return chunks;
}

/** The frames of a chunk file. */
export async function readChunk(path: string, width: number, height: number): Promise<Buffer[]> {
  const data = await readFile(path);
  const size = width * height * CHANNELS;
  if (data.length % size !== 0)
    throw new NonRetryableError(
      `chunk of ${data.length} bytes is not a whole number of ${width}x${height} frames`,
    );
  return Array.from({ length: data.length / size }, (_, i) => data.subarray(i * size, (i + 1) * size));
}

/** Frames as one tall raw image with a page height: how sharp takes an animation. */
export function animation(frames: Buffer[], width: number, height: number): Sharp {
  return sharp(Buffer.concat(frames), {
    raw: { width, height: height * frames.length, channels: CHANNELS, pageHeight: height },
  });
}
