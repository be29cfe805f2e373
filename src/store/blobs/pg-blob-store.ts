import { createHash, randomUUID } from 'node:crypto';
import type { Pool, PoolClient, QueryResultRow } from 'pg';
import type { Readable } from 'node:stream';
import { CosmosError, NotFoundError, StoreClosedError } from '../../errors.js';
import {
  checkListLimit,
  collect,
  contentTypeOf,
  discard,
  openLocalFile,
  refHex,
  resolveRange,
  toBytes,
  toRef,
  verified,
  writeFileAtomically,
  type BlobInfo,
  type BlobMeta,
  type BlobRef,
  type BlobSource,
  type BlobStat,
  type BlobStore,
  type ByteRange,
} from './blob-store.js';
import { blobQueries as q, type BlobQueryName } from './pg-queries.js';

/** Part of the stored format (migration 0003): range reads compute chunk numbers from it. */
export const CHUNK_SIZE = 1024 * 1024;

interface BlobRow {
  ref: BlobRef;
  size: string;
  content_type: string;
  created_at: string;
}

type Client = Pool | PoolClient;

/**
 * Blobs in PostgreSQL, for distributed mode: a `blobs` row per blob and its bytes in 1 MiB `blob_chunks`
 * rows, on the store's pool (whose search_path is the installation's schema). A put is one transaction, so a
 * blob is visible whole or not at all. Reads take a pooled connection per chunk, never for a whole stream,
 * so a slow reader does not hold a connection.
 */
export class PgBlobStore implements BlobStore {
  private closed = false;

  /** The pool stays the store's: closing the blob store does not end it. */
  constructor(private readonly pool: Pool) {}

  async putBuffer(data: Uint8Array | string, meta?: BlobMeta): Promise<BlobInfo> {
    const contentType = contentTypeOf(meta);
    this.ensureOpen();
    const bytes = toBytes(data);
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const ref = toRef(createHash('sha256').update(buffer).digest('hex'));
    const existing = await this.read(ref);
    if (existing) return info(existing);
    return this.transaction(async (c) => {
      // Claimed first, so a concurrent put of the same bytes waits instead of uploading them too.
      const found = await this.claimOrFind(c, ref, buffer.length, contentType);
      if (found) return { commit: false, value: info(found) };
      for (let seq = 0; seq * CHUNK_SIZE < buffer.length; seq++)
        await this.run(c, 'insertChunk', [
          ref,
          seq,
          buffer.subarray(seq * CHUNK_SIZE, (seq + 1) * CHUNK_SIZE),
        ]);
      return { commit: true, value: { ref, size: buffer.length, contentType } };
    });
  }

  async putFile(path: string, meta?: BlobMeta): Promise<BlobInfo> {
    contentTypeOf(meta);
    this.ensureOpen();
    return this.putStream(await openLocalFile(path), meta);
  }

  /**
   * The digest is known only at the end, so the chunks are written under a temporary ref (a placeholder
   * `blobs` row nobody else can see) and handed to the real ref once it is known, or dropped with the
   * transaction when those bytes are stored already.
   */
  async putStream(source: BlobSource, meta?: BlobMeta): Promise<BlobInfo> {
    const contentType = contentTypeOf(meta);
    this.ensureOpen();
    const upload = `upload:${randomUUID()}`;
    return this.transaction(async (c) => {
      await this.run(c, 'claim', [upload, 0, contentType, Date.now()]);
      const hash = createHash('sha256');
      let size = 0;
      let seq = 0;
      // One reused 1 MiB buffer: the stream is never held in memory, however large.
      const chunk = Buffer.allocUnsafe(CHUNK_SIZE);
      let fill = 0;
      for await (const piece of source as AsyncIterable<unknown>) {
        const bytes = toBytes(piece);
        hash.update(bytes);
        size += bytes.length;
        for (let offset = 0; offset < bytes.length;) {
          const n = Math.min(CHUNK_SIZE - fill, bytes.length - offset);
          chunk.set(bytes.subarray(offset, offset + n), fill);
          fill += n;
          offset += n;
          if (fill === CHUNK_SIZE) {
            await this.run(c, 'insertChunk', [upload, seq++, chunk]);
            fill = 0;
          }
        }
      }
      if (fill > 0) await this.run(c, 'insertChunk', [upload, seq, chunk.subarray(0, fill)]);
      const ref = toRef(hash.digest('hex'));
      const found = await this.claimOrFind(c, ref, size, contentType);
      if (found) return { commit: false, value: info(found) };
      await this.run(c, 'adoptChunks', [upload, ref]);
      await this.run(c, 'delete', [upload]);
      return { commit: true, value: { ref, size, contentType } };
    }).catch((error: unknown) => {
      discard(source);
      throw error;
    });
  }

  async stat(ref: string): Promise<BlobStat | undefined> {
    refHex(ref);
    this.ensureOpen();
    return this.read(ref);
  }

  async getStream(ref: string, range?: ByteRange): Promise<Readable> {
    const hex = refHex(ref);
    this.ensureOpen();
    const blob = await this.read(ref);
    if (!blob) throw new NotFoundError('blob', ref);
    const { size } = blob;
    const { start, end } = resolveRange(range, size);
    const whole = start === 0 && end === size;
    return verified(this.chunks(ref, size, start, end), ref, {
      length: end - start,
      hex: whole ? hex : undefined,
    });
  }

  async getBuffer(ref: string): Promise<Buffer> {
    return collect(await this.getStream(ref));
  }

  async toFile(ref: string, path: string): Promise<void> {
    await writeFileAtomically(await this.getStream(ref), path);
  }

  async delete(ref: string): Promise<boolean> {
    refHex(ref);
    this.ensureOpen();
    const res = await this.pool.query({ name: 'blobs.delete', text: q.delete, values: [ref] });
    return (res.rowCount ?? 0) > 0;
  }

  async list(options: { after?: string; limit: number }): Promise<BlobStat[]> {
    checkListLimit(options.limit);
    if (options.after !== undefined) refHex(options.after);
    this.ensureOpen();
    const rows = await this.run<BlobRow>(this.pool, 'list', [options.after ?? '', options.limit]);
    return rows.map(rowToStat);
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  /** The bytes `start` to `end` of a blob of `size` bytes, fetching only the chunks they fall in. */
  private async *chunks(ref: string, size: number, start: number, end: number): AsyncGenerator<Buffer> {
    if (start === end) return;
    const first = Math.floor(start / CHUNK_SIZE);
    const last = Math.floor((end - 1) / CHUNK_SIZE);
    for (let seq = first; seq <= last; seq++) {
      const data = await this.chunk(ref, seq);
      const base = seq * CHUNK_SIZE;
      // Cheap integrity check on every read: each chunk must have the length the blob's size implies.
      if (data.length !== Math.min(CHUNK_SIZE, size - base))
        throw new CosmosError('blob_corrupt', `blob ${ref} is damaged: chunk ${seq} has the wrong length`, {
          ref,
        });
      yield data.subarray(seq === first ? start - base : 0, seq === last ? end - base : data.length);
    }
  }

  private async read(ref: string, client: Client = this.pool): Promise<BlobStat | undefined> {
    const [row] = await this.run<BlobRow>(client, 'stat', [ref]);
    return row && rowToStat(row);
  }

  /**
   * Takes `ref` for this transaction, or finds it stored (and committed) by someone else. A blob deleted
   * between the conflict and the look-up is simply claimed again.
   */
  private async claimOrFind(
    c: PoolClient,
    ref: string,
    size: number,
    contentType: string,
  ): Promise<BlobStat | undefined> {
    for (;;) {
      const claimed = await this.run(c, 'claim', [ref, size, contentType, Date.now()]);
      if (claimed.length > 0) return undefined;
      const existing = await this.read(ref, c);
      if (existing) return existing;
    }
  }

  /** One chunk's bytes; a missing one means the blob was deleted meanwhile, or damaged. */
  private async chunk(ref: string, seq: number): Promise<Buffer> {
    // Text format on purpose: pg decodes binary-format fields as UTF-8 strings, which mangles bytes.
    const [row] = await this.run<{ data: Buffer }>(this.pool, 'chunk', [ref, seq]);
    const data = row?.data;
    if (data) return data;
    if (!(await this.read(ref))) throw new NotFoundError('blob', ref);
    throw new CosmosError('blob_corrupt', `blob ${ref} is damaged: chunk ${seq} is missing`, { ref });
  }

  private async run<R extends QueryResultRow>(
    client: Client,
    name: BlobQueryName,
    values: unknown[],
  ): Promise<R[]> {
    return (await client.query<R>({ name: `blobs.${name}`, text: q[name], values })).rows;
  }

  /** Runs `work` in a transaction it decides to commit or roll back; a failure always rolls back. */
  private async transaction<T>(work: (c: PoolClient) => Promise<{ commit: boolean; value: T }>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      try {
        const { commit, value } = await work(client);
        await client.query(commit ? 'COMMIT' : 'ROLLBACK');
        return value;
      } catch (error) {
        // A connection that cannot even roll back is discarded rather than returned to the pool.
        await client.query('ROLLBACK').catch((e: unknown) => {
          broken = e instanceof Error ? e : new Error(String(e));
        });
        throw error;
      }
    } finally {
      client.release(broken);
    }
  }

  private ensureOpen(): void {
    if (this.closed) throw new StoreClosedError();
  }
}

function rowToStat(row: BlobRow): BlobStat {
  return {
    ref: row.ref,
    size: Number(row.size),
    contentType: row.content_type,
    createdAt: Number(row.created_at),
  };
}

function info(blob: BlobStat): BlobInfo {
  return { ref: blob.ref, size: blob.size, contentType: blob.contentType };
}
