import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tsImport } from 'tsx/esm/api';
import { CosmosError } from '../errors.js';
import type { DeployedService } from './catalog.js';
import { isServiceDefinition } from './service.js';

const ENTRY_NAMES = ['service.ts', 'service.mts', 'service.js', 'service.mjs'];

export interface LoadedServices {
  services: DeployedService[];
  /** Every local file the services imported: what `cosmos dev` watches to reload them. */
  files: string[];
}

/** The service entry of a folder, if it has one. */
function entryOf(dir: string): string | undefined {
  return ENTRY_NAMES.map((n) => join(dir, n)).find((p) => existsSync(p));
}

/**
 * Loads the services of a folder: the folder itself when it holds a `service.ts`, otherwise each of its
 * sub-folders that does (`services/<name>/service.ts`). TypeScript loads directly; every load is fresh, so a
 * reload sees edited code.
 */
export async function loadServices(root: string): Promise<LoadedServices> {
  const dir = resolve(root);
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new CosmosError('service_invalid', `no services folder at ${dir}`, { dir });
  const own = entryOf(dir);
  const entries = own
    ? [own]
    : readdirSync(dir, { withFileTypes: true })
        .filter((d) => d.isDirectory() && !d.name.startsWith('.') && d.name !== 'node_modules')
        .map((d) => entryOf(join(dir, d.name)))
        .filter((p): p is string => p !== undefined)
        .sort();
  if (entries.length === 0)
    throw new CosmosError(
      'service_invalid',
      `no services in ${dir}: expected <name>/service.ts folders (or a service.ts here)`,
      { dir },
    );
  const files = new Set<string>();
  const services: DeployedService[] = [];
  for (const module of entries) {
    let mod: { default?: unknown };
    try {
      mod = (await tsImport(pathToFileURL(module).href, {
        parentURL: import.meta.url,
        onImport: (url) => {
          if (url.startsWith('file:') && !url.includes('/node_modules/')) files.add(new URL(url).pathname);
        },
      })) as { default?: unknown };
    } catch (e) {
      if (e instanceof CosmosError) throw e;
      throw new CosmosError(
        'service_invalid',
        `${module} failed to load: ${String(e)}`,
        { module },
        { cause: e },
      );
    }
    const def = mod.default;
    if (!isServiceDefinition(def))
      throw new CosmosError('service_invalid', `${module} must default-export defineService({...})`, {
        module,
      });
    const folder = basename(join(module, '..'));
    if (!own && folder !== def.name)
      throw new CosmosError(
        'service_invalid',
        `${module} defines service "${def.name}" in folder "${folder}": name the folder after the service`,
        { module, service: def.name },
      );
    files.add(module);
    services.push({ definition: def, module });
  }
  return { services, files: [...files] };
}
