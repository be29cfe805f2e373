import { existsSync, watch, type FSWatcher } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CosmosEnv } from '../env.js';
import { isCosmosError } from '../errors.js';
import { startNode, type CosmosNode } from '../node.js';
import { isLoopback } from './loopback.js';
import { storeFrom } from './platform.js';

export interface ServeOptions {
  host: string;
  port: number;
  data?: string;
  db?: string;
  schema?: string;
  /** The services folder (a positional argument). */
  dir?: string;
  /** Reload services when their files change (`cosmos dev`). */
  watch?: boolean;
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
function servicesDir(kind: 'dev' | 'start', dir: string | undefined): string | undefined {
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

export async function serve(kind: 'dev' | 'start', opts: ServeOptions, env: CosmosEnv): Promise<void> {
  refuseUnauthenticated(opts.host);
  const store = storeFrom(opts);
  const dir = servicesDir(kind, opts.dir);
  const node = await startNode({
    store,
    server: { host: opts.host, port: opts.port },
    ...(dir !== undefined && { servicesDir: dir }),
    ...(env.logLevel && { logLevel: env.logLevel }),
    ...(env.otlp && { otlp: env.otlp }),
  });
  const where =
    store.kind === 'sqlite'
      ? `embedded SQLite at ${store.path}`
      : `PostgreSQL schema "${store.schema ?? 'cosmos'}"`;
  process.stdout.write(`cosmos ${kind}: listening on ${node.url} (store: ${where})\n`);
  const services = node.catalog.list();
  process.stdout.write(
    services.length > 0
      ? `  services from ${dir}: ${services.map((s) => `${s.name} (${Object.keys(s.operations).join(', ')})`).join(' · ')}\n`
      : '  no services deployed (give a folder of <name>/service.ts, or create ./services)\n',
  );
  process.stdout.write(
    `  UI ${node.url}/ui/ · health ${node.url}/healthz · API ${node.url}/openapi.json · metrics ${node.url}/metrics\n`,
  );
  const watcher = opts.watch && dir !== undefined ? watchServices(node, dir) : undefined;
  const stop = (signal: string): void => {
    process.stdout.write(`cosmos ${kind}: ${signal}, shutting down\n`);
    watcher?.close();
    node.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
