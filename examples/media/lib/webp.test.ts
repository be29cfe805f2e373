import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { animation } from './frames.js';
import { joinAnimatedWebp, webpFrames } from './webp.js';

const W = 32;
const H = 18;
const frames = (n: number, shade: number): Buffer[] =>
  Array.from({ length: n }, (_, i) => Buffer.alloc(W * H * 3, (shade + i * 20) % 256));
const encode = (f: Buffer[], width = W, height = H): Promise<Buffer> =>
  animation(f, width, height)
    .webp({ quality: 90, loop: 0, delay: f.map(() => 40) })
    .toBuffer();

describe('joinAnimatedWebp', () => {
  it('joins animated parts into one file that sharp decodes frame for frame, without re-encoding', async () => {
    const parts = [await encode(frames(3, 0)), await encode(frames(2, 100)), await encode(frames(4, 200))];
    const joined = joinAnimatedWebp(parts);
    expect(webpFrames(joined)).toBe(9);
    const meta = await sharp(joined, { pages: -1 }).metadata();
    expect([meta.pages, meta.width, meta.pageHeight]).toEqual([9, W, H]);
    // Each frame decodes to what its part decodes to (frame 4 is the second frame of part 1).
    const fromJoined = await sharp(joined, { page: 4 }).raw().toBuffer();
    const fromPart = await sharp(parts[1], { page: 1 }).raw().toBuffer();
    expect(fromJoined.equals(fromPart)).toBe(true);
  });

  it('refuses parts that are not animated WebP or differ in canvas size', async () => {
    const still = await sharp({ create: { width: W, height: H, channels: 3, background: '#000' } })
      .webp()
      .toBuffer();
    expect(() => joinAnimatedWebp([Buffer.from('not a webp file at all')])).toThrow(/not a WebP/);
    expect(() => joinAnimatedWebp([still])).toThrow(/not an animated WebP/);
    const big = [0, 90].map((shade) => Buffer.alloc(W * 2 * H * 2 * 3, shade));
    expect(() => joinAnimatedWebp([Buffer.alloc(0)])).toThrow(/not a WebP/);
    const mixed = [await encode(frames(2, 0)), await encode(big, W * 2, H * 2)];
    expect(() => joinAnimatedWebp(mixed)).toThrow(/canvas size/);
    expect(() => joinAnimatedWebp([])).toThrow(/nothing to join/);
  });
});
