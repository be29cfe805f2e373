import type { PostgresStore } from '../postgres/postgres-store.js';
import type { Store } from '../store.js';
import type { BlobStore } from './blob-store.js';
import { FsBlobStore } from './fs-blob-store.js';
import { PgBlobStore } from './pg-blob-store.js';

/**
 * The blob store that goes with a store: files under `dir` beside an embedded (SQLite) store, tables in the
 * same database and schema for a distributed (PostgreSQL) one, so every node of an installation sees the
 * same blobs without shared disks.
 */
export async function openBlobStore(store: Store, options: { dir: string }): Promise<BlobStore> {
  if (store.dialect === 'postgres') return new PgBlobStore((store as PostgresStore).pool);
  return FsBlobStore.open(options.dir);
}
