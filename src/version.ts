import { readFileSync } from 'node:fs';

/** The Cosmos version this code is (from package.json, one folder up from both src/ and dist/). */
export const COSMOS_VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
