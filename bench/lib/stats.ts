/** The q-quantile (0..1) by linear interpolation between closest ranks. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new Error('quantile of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export const median = (values: readonly number[]): number => quantile(values, 0.5);

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function summarize(values: readonly number[]): Summary {
  const round = (x: number): number => Number(x.toFixed(4));
  return {
    n: values.length,
    min: round(Math.min(...values)),
    p50: round(quantile(values, 0.5)),
    p90: round(quantile(values, 0.9)),
    p99: round(quantile(values, 0.99)),
    max: round(Math.max(...values)),
  };
}

/** Milliseconds since `start`, a `performance.now()` reading. */
export const since = (start: number): number => performance.now() - start;

/**
 * Throughput rounds: `rounds` runs of `count` operations each, timed one by one. Returns each round's rate in
 * operations per second, in order; `onRound` hears about each round before (rate undefined) and after it.
 */
export async function timedRounds(
  rounds: number,
  count: number,
  run: (count: number) => Promise<void>,
  onRound: (round: number, rate?: number) => void = () => undefined,
): Promise<number[]> {
  const rates: number[] = [];
  for (let r = 0; r < rounds; r++) {
    onRound(r);
    const t0 = performance.now();
    await run(count);
    rates.push(Math.round(count / ((performance.now() - t0) / 1000)));
    onRound(r, rates[r]);
  }
  return rates;
}
