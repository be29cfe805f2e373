/**
 * The one place that reads environment variables. Everything else receives typed options.
 */
export interface CosmosEnv {
  /** COSMOS_DATABASE_URL: PostgreSQL for `cosmos start` when --db is not given. */
  databaseUrl: string | undefined;
  /** COSMOS_DATA_DIR: the embedded store's folder when --data is not given. */
  dataDir: string | undefined;
  /** COSMOS_PORT / COSMOS_HOST */
  port: number | undefined;
  host: string | undefined;
  /** COSMOS_LOG_LEVEL */
  logLevel: string | undefined;
  /** COSMOS_TEST_DATABASE_URL: PostgreSQL for the test suite and benchmarks. */
  testDatabaseUrl: string | undefined;
  /** CI: in CI the PostgreSQL suite must run, never skip. */
  ci: boolean;
  /** UV_THREADPOOL_SIZE: libuv's thread pool, which native addons (sharp) run on; 4 when unset. */
  uvThreadpoolSize: number;
  /** PATH, where command functions' executables are looked up. */
  path: string;
}

export function readEnv(env: NodeJS.ProcessEnv = process.env): CosmosEnv {
  const port = env['COSMOS_PORT'];
  return {
    databaseUrl: env['COSMOS_DATABASE_URL'] || undefined,
    dataDir: env['COSMOS_DATA_DIR'] || undefined,
    port: port ? Number(port) : undefined,
    host: env['COSMOS_HOST'] || undefined,
    logLevel: env['COSMOS_LOG_LEVEL'] || undefined,
    testDatabaseUrl: env['COSMOS_TEST_DATABASE_URL'] || undefined,
    ci: env['CI'] === 'true' || env['CI'] === '1',
    uvThreadpoolSize: Number(env['UV_THREADPOOL_SIZE']) || 4,
    path: env['PATH'] ?? '',
  };
}

/**
 * The named variables that are set, for passing to a sandboxed function or a command: those processes get
 * an empty environment plus exactly this allow-list.
 */
export function passThrough(
  names: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) {
    const v = env[n];
    if (v !== undefined) out[n] = v;
  }
  return out;
}
