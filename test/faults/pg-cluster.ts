/**
 * A throwaway PostgreSQL cluster for the fault tests: initdb in a temporary folder, a free loopback port, the
 * machine's own PostgreSQL binaries. PostgreSQL refuses to run as root, so under root (CI) the cluster belongs
 * to the `postgres` user and its commands run through runuser.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export interface PgCluster {
  url: string;
  port: number;
  dir: string;
  restart(mode: 'fast' | 'immediate'): void;
  stop(): void;
  log(): string;
}

/** The newest PostgreSQL's bin folder: pg_config's answer, else /usr/lib/postgresql/<major>/bin. */
export function pgBinDir(): string {
  const fromConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  const candidates: string[] = [];
  if (fromConfig.status === 0) candidates.push(fromConfig.stdout.trim());
  if (existsSync('/usr/lib/postgresql'))
    for (const v of readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a)))
      candidates.push(`/usr/lib/postgresql/${v}/bin`);
  const dir = candidates.find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl')));
  if (!dir)
    throw new Error(
      'no PostgreSQL server binaries (initdb, pg_ctl) found: install the PostgreSQL server package (e.g. apt-get install postgresql)',
    );
  return dir;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startPgCluster(): Promise<PgCluster> {
  const bin = pgBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'cosmos-faults-pg-'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'postgres.log');
  const root = userInfo().uid === 0;
  if (root) chownSync(dir, uidOf('postgres'), gidOf('postgres'));
  const run = (cmd: string, args: string[]): string => {
    const [file, argv] = root
      ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]]
      : [join(bin, cmd), args];
    return execFileSync(file, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  };
  run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  const opts = [
    `-p ${port}`,
    '-c listen_addresses=127.0.0.1',
    `-c unix_socket_directories=${dir}`,
    '-c max_connections=300',
    '-c shared_buffers=128MB',
    '-c fsync=on',
    '-c synchronous_commit=on',
  ].join(' ');
  const pgctl = (args: string[]): string =>
    run('pg_ctl', ['-D', data, '-l', logFile, '-w', '-t', '60', ...args]);
  pgctl(['-o', opts, 'start']);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dir,
    restart: (mode) => void pgctl(['-m', mode, '-o', opts, 'restart']),
    stop: () => {
      try {
        pgctl(['-m', 'immediate', 'stop']);
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
    log: () => spawnSync('tail', ['-n', '30', logFile], { encoding: 'utf8' }).stdout,
  };
}

function uidOf(user: string): number {
  return Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
}

function gidOf(user: string): number {
  return Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
}
