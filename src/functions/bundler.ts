import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

/**
 * Packages with native code cannot be inlined into a bundle; the bundle imports them from node_modules by
 * absolute path (resolved from the importing file at bundle time), so a bundle works wherever it is written.
 */
export const NATIVE_PACKAGES = [
  'sharp',
  'better-sqlite3',
  'better-sqlite3-napi',
  'esbuild',
  'pg-native',
  'fsevents',
];

// Bundled CommonJS dependencies call require() for Node built-ins; an ES module has no require of its own.
const REQUIRE_SHIM = `import { createRequire as __cosmosRequire } from 'node:module';
const require = __cosmosRequire(import.meta.url);`;

export interface Bundle {
  /** Absolute path of the single-file ES module. */
  path: string;
  /** Content hash: two builds of the same code have the same one, which is what versions a function. */
  hash: string;
}

/**
 * Bundles a module and everything it imports (TypeScript included) into one ES module file, named by its
 * content hash. One file is what the sandbox may read, and what a version pins.
 */
export async function bundle(entry: string, outDir: string, external: string[] = []): Promise<Bundle> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    sourcemap: 'inline',
    external,
    plugins: [nativeByPath],
    banner: { js: REQUIRE_SHIM },
    logLevel: 'silent',
  });
  const text = result.outputFiles[0]!.contents;
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 16);
  const path = join(outDir, `${basename(entry, extname(entry))}-${hash}.mjs`);
  if (!existsSync(path)) {
    mkdirSync(outDir, { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  }
  return { path, hash };
}

const NATIVE = new RegExp(`^(${NATIVE_PACKAGES.join('|')})(/.*)?$`);

/** Resolves a native package as esbuild would (import conditions) and keeps it out of the bundle by path. */
const nativeByPath: Plugin = {
  name: 'cosmos-native-by-path',
  setup(b) {
    b.onResolve({ filter: NATIVE }, async (args) => {
      if (args.pluginData === 'native') return undefined;
      const r = await b.resolve(args.path, {
        kind: args.kind,
        resolveDir: args.resolveDir,
        importer: args.importer,
        pluginData: 'native',
      });
      // Unresolvable (an optional dependency that is not installed): left as a bare import, as before.
      if (r.errors.length > 0) return { path: args.path, external: true };
      return { path: r.path, external: true };
    });
  },
};

const runners = new Map<string, Promise<string>>();

/**
 * The entry file of a runner (thread or sandbox), as one bundled file: from the compiled `.js` when Cosmos
 * runs from dist, from the `.ts` source under the test runner. One file keeps the sandbox's read allow-list
 * to two paths (the runner and the function's bundle).
 */
export function runnerEntry(name: 'thread-entry' | 'sandbox-entry'): Promise<string> {
  let p = runners.get(name);
  if (!p) {
    const js = fileURLToPath(new URL(`./runtimes/${name}.js`, import.meta.url));
    const source = existsSync(js) ? js : fileURLToPath(new URL(`./runtimes/${name}.ts`, import.meta.url));
    p = bundle(source, join(tmpdir(), 'cosmos-runners')).then((b) => b.path);
    runners.set(name, p);
    p.catch(() => runners.delete(name));
  }
  return p;
}
