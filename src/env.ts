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
  /** COSMOS_CONFIG: a node's configuration file (JSON), read by `cosmos start` and `cosmos worker`. */
  configFile: string | undefined;
  /** COSMOS_SCHEMA: the PostgreSQL schema when --schema is not given. */
  schema: string | undefined;
  /** COSMOS_ROLES (`api,engine`), COSMOS_POOLS (`default,media`), COSMOS_SLOTS, COSMOS_NODE_NAME. */
  roles: string[] | undefined;
  pools: string[] | undefined;
  slots: number | undefined;
  nodeName: string | undefined;
  /** COSMOS_TEST_DATABASE_URL: PostgreSQL for the test suite and benchmarks. */
  testDatabaseUrl: string | undefined;
  /** CI: in CI the PostgreSQL suite must run, never skip. */
  ci: boolean;
  /** UV_THREADPOOL_SIZE: libuv's thread pool, which native addons (sharp) run on; 4 when unset. */
  uvThreadpoolSize: number;
  /** PATH, where command functions' executables are looked up. */
  path: string;
  /**
   * OTLP/HTTP trace export, from the standard OpenTelemetry variables: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the
   * full URL) or OTEL_EXPORTER_OTLP_ENDPOINT (+ /v1/traces), OTEL_EXPORTER_OTLP_HEADERS (`k=v,k2=v2`),
   * OTEL_SERVICE_NAME; OTEL_TRACES_EXPORTER=none turns it off. Undefined when no endpoint is set.
   */
  otlp: { url: string; headers: Record<string, string>; serviceName?: string } | undefined;
}

export function readEnv(env: NodeJS.ProcessEnv = process.env): CosmosEnv {
  const port = env['COSMOS_PORT'];
  return {
    databaseUrl: env['COSMOS_DATABASE_URL'] || undefined,
    dataDir: env['COSMOS_DATA_DIR'] || undefined,
    port: port ? Number(port) : undefined,
    host: env['COSMOS_HOST'] || undefined,
    logLevel: env['COSMOS_LOG_LEVEL'] || undefined,
    configFile: env['COSMOS_CONFIG'] || undefined,
    schema: env['COSMOS_SCHEMA'] || undefined,
    roles: list(env['COSMOS_ROLES']),
    pools: list(env['COSMOS_POOLS']),
    slots: env['COSMOS_SLOTS'] ? Number(env['COSMOS_SLOTS']) : undefined,
    nodeName: env['COSMOS_NODE_NAME'] || undefined,
    testDatabaseUrl: env['COSMOS_TEST_DATABASE_URL'] || undefined,
    ci: env['CI'] === 'true' || env['CI'] === '1',
    uvThreadpoolSize: Number(env['UV_THREADPOOL_SIZE']) || 4,
    path: env['PATH'] ?? '',
    otlp: otlpFrom(env),
  };
}

function list(value: string | undefined): string[] | undefined {
  const items = (value ?? '')
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
  return items.length > 0 ? items : undefined;
}

function otlpFrom(env: NodeJS.ProcessEnv): CosmosEnv['otlp'] {
  if (env['OTEL_TRACES_EXPORTER'] === 'none' || env['OTEL_SDK_DISABLED'] === 'true') return undefined;
  const base = env['OTEL_EXPORTER_OTLP_ENDPOINT'];
  const url =
    env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] || (base ? `${base.replace(/\/+$/, '')}/v1/traces` : '');
  if (!url) return undefined;
  const headers: Record<string, string> = {};
  for (const pair of (
    env['OTEL_EXPORTER_OTLP_TRACES_HEADERS'] ||
    env['OTEL_EXPORTER_OTLP_HEADERS'] ||
    ''
  ).split(',')) {
    const eq = pair.indexOf('=');
    if (eq > 0)
      headers[decodeURIComponent(pair.slice(0, eq).trim())] = decodeURIComponent(pair.slice(eq + 1).trim());
  }
  const serviceName = env['OTEL_SERVICE_NAME'] || undefined;
  return { url, headers, ...(serviceName && { serviceName }) };
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
