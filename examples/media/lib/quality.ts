import { CHANNELS } from './frames.js';

/**
 * Full-reference quality metrics between two raw RGB frames of one size, as a video quality service computes
 * them per chunk. PSNR over all channels; SSIM on luma (BT.601), over 8×8 windows with a stride of 4.
 */

/** Identical frames have no noise: their PSNR is reported as this ceiling instead of infinity. */
export const PSNR_CEILING = 100;

export function psnr(a: Buffer, b: Buffer): number {
  if (a.length !== b.length) throw new Error(`frames differ in size (${a.length} and ${b.length} bytes)`);
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    sum += d * d;
  }
  const mse = sum / a.length;
  return mse === 0 ? PSNR_CEILING : Math.min(PSNR_CEILING, 10 * Math.log10((255 * 255) / mse));
}

function luma(rgb: Buffer): Float64Array {
  const out = new Float64Array(rgb.length / CHANNELS);
  for (let p = 0, i = 0; p < out.length; p++, i += CHANNELS)
    out[p] = 0.299 * rgb[i]! + 0.587 * rgb[i + 1]! + 0.114 * rgb[i + 2]!;
  return out;
}

const C1 = (0.01 * 255) ** 2;
const C2 = (0.03 * 255) ** 2;
const WINDOW = 8;
const STRIDE = 4;

export function ssim(a: Buffer, b: Buffer, width: number, height: number): number {
  if (a.length !== b.length || a.length !== width * height * CHANNELS)
    throw new Error(`frames are not both ${width}x${height}`);
  const x = luma(a);
  const y = luma(b);
  const n = WINDOW * WINDOW;
  let total = 0;
  let windows = 0;
  for (let top = 0; top + WINDOW <= height; top += STRIDE)
    for (let left = 0; left + WINDOW <= width; left += STRIDE) {
      let sx = 0;
      let sy = 0;
      let sxx = 0;
      let syy = 0;
      let sxy = 0;
      for (let r = top; r < top + WINDOW; r++)
        for (let c = left, p = r * width + left; c < left + WINDOW; c++, p++) {
          const u = x[p]!;
          const v = y[p]!;
          sx += u;
          sy += v;
          sxx += u * u;
          syy += v * v;
          sxy += u * v;
        }
      const mx = sx / n;
      const my = sy / n;
      const vx = sxx / n - mx * mx;
      const vy = syy / n - my * my;
      const cov = sxy / n - mx * my;
      total += ((2 * mx * my + C1) * (2 * cov + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2));
      windows++;
    }
  return windows === 0 ? 1 : total / windows;
}

export function mean(values: number[]): number {
  return values.length === 0 ? 0 : values.reduce((s, v) => s + v, 0) / values.length;
}
