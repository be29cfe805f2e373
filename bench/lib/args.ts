import { parseArgs } from 'node:util';

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

/** A benchmark's `--name <value>` options (strict: an unknown one is an error); `--help` prints `usage`, exits. */
export function stringOptions<K extends string>(
  argv: string[],
  names: readonly K[],
  usage: string,
): Partial<Record<K, string>> {
  const options = Object.fromEntries(names.map((n) => [n, { type: 'string' as const }]));
  const { values } = parseArgs({
    args: argv,
    options: { ...options, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  return values as Partial<Record<K, string>>;
}
