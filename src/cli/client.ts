import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { generateClient } from '../api/client-gen.js';
import { loadServices } from '../api/loader.js';
import { openApiDocument } from '../api/openapi.js';
import { HttpPlatform } from './platform.js';

/** `cosmos client <service> --out <file>`: from a running server (--url) or a services folder (--services). */
export function clientCommand(program: Command): void {
  program
    .command('client <service>')
    .description("write a typed TypeScript client for a service's operations")
    .requiredOption('--out <file>', 'the .ts file to write')
    .option('--url <server>', 'read the API description from a running server')
    .option('--services <dir>', 'read the service definitions from this folder', 'services')
    .action(async (service: string, o: { out: string; url?: string; services: string }) => {
      const doc = o.url
        ? await new HttpPlatform(o.url).request<Record<string, unknown>>('/openapi.json')
        : openApiDocument((await loadServices(o.services)).services.map((s) => s.definition));
      const out = resolve(o.out);
      writeFileSync(out, await generateClient(doc, service));
      process.stdout.write(`wrote ${out}\n`);
    });
}
