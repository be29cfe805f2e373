import type { Backoff } from './define.js';

/**
 * Delay before attempt `next` (2 = the first retry): initialMs · factor^(next−2), capped at maxMs, and with
 * full jitter drawn uniformly from [0, that]. `random` is injectable so tests can pin it.
 */
export function retryDelay(b: Backoff, next: number, random: () => number = Math.random): number {
  const exp = Math.min(b.maxMs, b.initialMs * b.factor ** Math.max(0, next - 2));
  return Math.round(b.jitter ? random() * exp : exp);
}
