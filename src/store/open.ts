import type { StoreOptions } from '../config.js';
import { PostgresStore } from './postgres/postgres-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import type { Store } from './store.js';

/** Opens a store and brings its schema up to date (refusing one newer than this code). */
export async function openStore(options: StoreOptions): Promise<Store> {
  return options.kind === 'sqlite' ? SqliteStore.open(options) : PostgresStore.open(options);
}
