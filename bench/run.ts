/**
 * Benchmark entry point: `npm run bench -- <name> [options]`. Results go to stdout as `metric …` and
 * `ratio …` lines (what the checks grep) and to bench/results/<name>.json; progress goes to stderr.
 */
const BENCHMARKS: Record<string, () => Promise<{ main(argv: string[]): Promise<void> }>> = {
  queue: () => import('./queue.js'),
  dispatch: () => import('./dispatch.js'),
  compute: () => import('./compute.js'),
  workflow: () => import('./workflow.js'),
  thumbnails: () => import('./thumbnails.js'),
  ui: () => import('./ui.js'),
  scaleout: () => import('./scaleout.js'),
};

async function runBench(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  const known = Object.keys(BENCHMARKS).join(', ');
  const load = name === undefined ? undefined : BENCHMARKS[name];
  if (!load) {
    process.stderr.write(
      name === undefined
        ? `usage: npm run bench -- <name>; known benchmarks: ${known}\n`
        : `unknown benchmark "${name}"; known benchmarks: ${known}\n`,
    );
    process.exitCode = 2;
    return;
  }
  const bench = await load();
  await bench.main(rest);
}

runBench(process.argv.slice(2)).then(
  () => {
    // Everything the benchmark opened is closed by now; a handle some library leaked must not keep the
    // process (and a CI job) alive.
    setTimeout(() => {
      process.stderr.write('[bench] still running 5s after finishing: exiting\n');
      process.exit(process.exitCode ?? 0);
    }, 5_000).unref();
  },
  (error: unknown) => {
    process.stderr.write(
      `[bench] failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
