import { existsSync, watch, type FSWatcher } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CosmosEnv } from '../env.js';
import { CosmosError, isCosmosError } from '../errors.js';
import { startNode, type CosmosNode } from '../node.js';
import { isLoopback } from './loopback.js';
import { storeFrom } from './platform.js';
import { Backoff, pause } from '../queue/backoff.js';
import { isUnreachable } from '../store/unreachable.js';
import { configFrom, parseRoles } from './node-config.js';
import type { CosmosOptionsInput, NodeRole } from '../config.js';

export interface ServeOptions {
  host?: string;
  port?: number;
  data?: string;
  db?: string;
  schema?: string;
  /** The services folder (a positional argument). */
  dir?: string;
  /** Reload services when their files change (`cosmos dev`). */
  watch?: boolean;
  /** Comma-separated roles (`api,engine,worker`). */
  roles?: string;
  /** Comma-separated pools a worker runs. */
  pools?: string;
  slots?: number;
  name?: string;
  /** A configuration file (JSON, see node-config.ts). */
  config?: string;
}

type Kind = 'dev' | 'start' | 'worker';

const DEFAULT_ROLES: Record<Kind, NodeRole[]> = {
  dev: ['api', 'engine', 'worker'],
  start: ['api', 'engine'],
  worker: ['worker'],
};

const split = (v: string | undefined): string[] | undefined =>
  v === undefined
    ? undefined
    : v
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean);

/** Flags, then environment, then the configuration file, then defaults. */
function resolveNode(
  kind: Kind,
  opts: ServeOptions,
  env: CosmosEnv,
): { input: CosmosOptionsInput; dir?: string } {
  const file = configFrom(opts.config, env);
  const db = opts.db ?? (kind === 'dev' ? undefined : (env.databaseUrl ?? file.db));
  if (kind !== 'dev' && db === undefined)
    throw new CosmosError(
      'config_invalid',
      `cosmos ${kind} needs PostgreSQL: give --db <url>, COSMOS_DATABASE_URL or "db" in the configuration file`,
    );
  const roleList = split(opts.roles) ?? env.roles;
  const roles = roleList ? parseRoles(roleList) : (file.roles ?? DEFAULT_ROLES[kind]);
  const pools = split(opts.pools) ?? env.pools ?? file.pools;
  const slots = opts.slots ?? env.slots ?? file.slots;
  const name = opts.name ?? env.nodeName ?? file.name;
  const leaseMs = file.leaseMs;
  const pollMs = file.pollMs;
  const store = storeFrom({
    ...(opts.data !== undefined && { data: opts.data }),
    ...(db !== undefined && { db }),
    schema: opts.schema ?? env.schema ?? file.schema ?? 'cosmos',
  });
  const dir = servicesDir(kind, opts.dir ?? file.services);
  const logLevel = env.logLevel ?? file.logLevel;
  const input: CosmosOptionsInput = {
    roles,
    store,
    server: {
      host: opts.host ?? env.host ?? file.host ?? '127.0.0.1',
      port: opts.port ?? env.port ?? file.port ?? 7070,
    },
    cluster: {
      ...(name !== undefined && { name }),
      ...(file.heartbeatMs !== undefined && { heartbeatMs: file.heartbeatMs }),
      ...(file.drainTimeoutMs !== undefined && { drainTimeoutMs: file.drainTimeoutMs }),
    },
    engine: { ...(leaseMs !== undefined && { leaseMs }), ...(pollMs !== undefined && { pollMs }) },
    queue: {
      ...(pollMs !== undefined && { pollIntervalMs: pollMs }),
      ...(file.maintenanceIntervalMs !== undefined && { maintenanceIntervalMs: file.maintenanceIntervalMs }),
    },
    runtime: {
      ...(pools !== undefined && { pools }),
      ...(slots !== undefined && { capacity: slots }),
      ...(leaseMs !== undefined && { leaseMs }),
    },
    ...(dir !== undefined && { servicesDir: dir }),
    ...(logLevel && { logLevel }),
    ...(env.otlp && { otlp: env.otlp }),
  };
  return { input, ...(dir !== undefined && { dir }) };
}

function refuseUnauthenticated(host: string): void {
  if (isLoopback(host)) return;
  throw new Error(
    `refusing to listen on ${host} without authentication: only loopback addresses are served unauthenticated. ` +
      'Bind to 127.0.0.1, or configure authentication (API keys / JWT) once the security layer is enabled.',
  );
}

/** The example media services shipped with Cosmos: what `cosmos dev` serves in a folder without services. */
export const EXAMPLES_DIR = fileURLToPath(new URL('../../examples/media', import.meta.url));

/** The services folder: the one given, else ./services when it exists, else (dev) the examples. */
function servicesDir(kind: Kind, dir: string | undefined): string | undefined {
  if (dir !== undefined) return resolve(dir);
  if (existsSync('services')) return resolve('services');
  return kind === 'dev' && existsSync(EXAMPLES_DIR) ? EXAMPLES_DIR : undefined;
}

/** Reloads the services when a file under their folder changes, keeping the old ones if the new fail. */
function watchServices(node: CosmosNode, dir: string): FSWatcher {
  let timer: NodeJS.Timeout | undefined;
  const reload = (): void => {
    node.reload().then(
      () =>
        process.stdout.write(
          `cosmos dev: services reloaded (${node.catalog
            .list()
            .map((s) => s.name)
            .join(', ')})\n`,
        ),
      (e: unknown) =>
        process.stderr.write(
          `cosmos dev: reload failed, still serving the previous services: ${isCosmosError(e) ? e.message : String(e)}\n`,
        ),
    );
  };
  return watch(dir, { recursive: true }, (_event, file) => {
    if (file && (file.includes('node_modules') || file.startsWith('.'))) return;
    clearTimeout(timer);
    timer = setTimeout(reload, 200);
  });
}

/** How long a node waits at start for a database that is restarting or not up yet. */
const STARTUP_PATIENCE_MS = 120_000;

/**
 * Starts the node, waiting for the database when it is not reachable yet (a fleet restarting together, a
 * database failing over): a node started by a supervisor at the wrong moment must not die for it.
 */
async function startWhenReachable(kind: Kind, input: CosmosOptionsInput): Promise<CosmosNode> {
  const giveUpAt = Date.now() + STARTUP_PATIENCE_MS;
  const backoff = new Backoff(250, 5_000);
  for (;;) {
    try {
      return await startNode(input);
    } catch (e) {
      if (!isUnreachable(e) || Date.now() >= giveUpAt) throw e;
      if (backoff.failures === 0)
        process.stderr.write(
          `cosmos ${kind}: waiting for the database (${e instanceof Error ? e.message : String(e)})\n`,
        );
      await pause(backoff.next());
    }
  }
}

export async function serve(kind: Kind, opts: ServeOptions, env: CosmosEnv): Promise<void> {
  const { input, dir } = resolveNode(kind, opts, env);
  const roles = input.roles!;
  if (roles.includes('api')) refuseUnauthenticated(input.server!.host!);
  const store = input.store!;
  const node = await startWhenReachable(kind, input);
  const where =
    store.kind === 'sqlite'
      ? `embedded SQLite at ${store.path}`
      : `PostgreSQL schema "${store.schema ?? 'cosmos'}"`;
  const me = node.heartbeat.record;
  if (node.url) process.stdout.write(`cosmos ${kind}: listening on ${node.url} (store: ${where})\n`);
  else process.stdout.write(`cosmos ${kind}: running (store: ${where})\n`);
  process.stdout.write(
    `  node ${me.name} · roles ${roles.join(', ')}${roles.includes('worker') ? ` · pools ${me.pools.join(', ') || '(none yet)'} · ${me.slots} slots` : ''}\n`,
  );
  const services = node.catalog.list();
  process.stdout.write(
    services.length > 0
      ? `  services from ${dir}: ${services.map((s) => `${s.name} (${Object.keys(s.operations).join(', ')})`).join(' · ')}\n`
      : '  no services deployed (give a folder of <name>/service.ts, or create ./services)\n',
  );
  if (node.url)
    process.stdout.write(
      `  UI ${node.url}/ui/ · health ${node.url}/healthz · API ${node.url}/openapi.json · metrics ${node.url}/metrics\n`,
    );
  const watcher = opts.watch && dir !== undefined ? watchServices(node, dir) : undefined;
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      process.stdout.write(`cosmos ${kind}: ${signal} again, stopping at once\n`);
      process.exit(1);
    }
    stopping = true;
    process.stdout.write(
      `cosmos ${kind}: ${signal}, draining (running functions get up to ${Math.round(node.options.cluster.drainTimeoutMs / 1000)} s; send it again to stop at once)\n`,
    );
    watcher?.close();
    node.drain().then(
      () => {
        process.stdout.write(`cosmos ${kind}: drained, stopped\n`);
        process.exit(0);
      },
      (e: unknown) => {
        process.stderr.write(`cosmos ${kind}: drain failed: ${String(e)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}
