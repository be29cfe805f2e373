import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { NODE_ROLES, type NodeRole } from '../config.js';
import type { CosmosEnv } from '../env.js';
import { CosmosError } from '../errors.js';

/**
 * A node's configuration file (`--config`, or COSMOS_CONFIG): JSON with any of these keys. Command-line flags
 * win over environment variables, which win over the file, which wins over the defaults. Paths in the file
 * are relative to the file.
 */
export const NodeConfigFile = z.strictObject({
  db: z.string().optional(),
  schema: z.string().optional(),
  host: z.string().optional(),
  port: z.number().int().min(0).max(65_535).optional(),
  services: z.string().optional(),
  roles: z
    .array(z.enum(NODE_ROLES as [NodeRole, ...NodeRole[]]))
    .min(1)
    .optional(),
  pools: z.array(z.string().min(1)).min(1).optional(),
  slots: z.number().int().positive().optional(),
  name: z.string().min(1).optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
  /** How often the node writes its registry row. */
  heartbeatMs: z.number().int().positive().optional(),
  /** On SIGTERM, how long running functions get to finish. */
  drainTimeoutMs: z.number().int().nonnegative().optional(),
  /** Lease of events and invocations: how soon a dead node's work moves to another. */
  leaseMs: z.number().int().min(100).optional(),
  /** The fallback poll when no wake-up arrives. */
  pollMs: z.number().int().min(10).optional(),
  /** How often the queue-maintenance duty runs (delayed messages and timers due, expired leases). */
  maintenanceIntervalMs: z.number().int().min(10).optional(),
});
export type NodeConfigFile = z.infer<typeof NodeConfigFile>;

export function readNodeConfig(path: string): NodeConfigFile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CosmosError('config_invalid', `cannot read the configuration file ${path}: ${String(e)}`, {
      path,
    });
  }
  const parsed = NodeConfigFile.safeParse(raw);
  if (!parsed.success)
    throw new CosmosError(
      'config_invalid',
      `configuration file ${path}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
      { path, issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) },
    );
  const c = parsed.data;
  if (c.services !== undefined) c.services = resolve(path, '..', c.services);
  return c;
}

/** Roles as given on the command line or in COSMOS_ROLES, checked. */
export function parseRoles(list: string[]): NodeRole[] {
  const bad = list.filter((r) => !(NODE_ROLES as readonly string[]).includes(r));
  if (bad.length > 0 || list.length === 0)
    throw new CosmosError(
      'config_invalid',
      `unknown role ${bad.join(', ') || '(none)'}; roles are ${NODE_ROLES.join(', ')}`,
      {
        roles: list,
      },
    );
  return [...new Set(list)] as NodeRole[];
}

/** The file named by the flag or COSMOS_CONFIG, if any. */
export function configFrom(flag: string | undefined, env: CosmosEnv): NodeConfigFile {
  const path = flag ?? env.configFile;
  return path === undefined ? {} : readNodeConfig(path);
}
