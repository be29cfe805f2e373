import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';

/**
 * better-sqlite3 12 wraps its objects in the raw node::ObjectWrap, whose destructor aborts the process on
 * Node 24 when the garbage collector frees a statement (`RemoveEnvironmentCleanupHook: (env) != nullptr`).
 * Version 13 is built on Node-API, which fixes that and ships prebuilt binaries, but crashes on Node 20.
 * So both are installed (13 under an npm alias) and the one that works on this Node is loaded here, the
 * only place that names the driver.
 */
const require = createRequire(import.meta.url);
const major = Number(process.versions.node.split('.')[0]);

function load(): typeof BetterSqlite3 {
  const name = major >= 22 ? 'better-sqlite3-napi' : 'better-sqlite3';
  try {
    return require(name) as typeof BetterSqlite3;
  } catch (error) {
    throw new Error(
      `the embedded store needs ${name} (Node ${process.versions.node}); reinstall dependencies with build tools available`,
      { cause: error },
    );
  }
}

export const Database: typeof BetterSqlite3 = load();
export type Database = BetterSqlite3.Database;
export type Statement = BetterSqlite3.Statement;
