// Compiles src/ to dist/, ships the SQL migrations beside the code that reads them, and builds the web UI
// into dist/ui (served at /ui/).
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import process from 'node:process';

const require = createRequire(import.meta.url);
rmSync('dist', { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
  stdio: 'inherit',
});
cpSync('src/store/migrations', 'dist/store/migrations', { recursive: true });
chmodSync('dist/cli/main.js', 0o755);
const { build } = await import('vite');
await build({ configFile: 'ui.vite.config.ts' });
