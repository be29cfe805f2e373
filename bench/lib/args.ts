/** An integer option `--name <n>` in [min, max]; `fallback` when absent. */
export function intOption(
  v: string | undefined,
  fallback: number,
  name: string,
  min = 1,
  max = Infinity,
): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new Error(
      min === 1 && max === Infinity
        ? `--${name} must be a positive integer, got "${v}"`
        : `--${name} must be an integer in [${min}, ${max}], got "${v}"`,
    );
  return n;
}
