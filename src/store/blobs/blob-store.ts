import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CosmosError, InvalidArgumentError } from '../../errors.js';

/**
 * Content-addressed storage for data too large for a queue message: function inputs and outputs, artifacts.
 * A blob is named by the SHA-256 of its bytes, so the same bytes put twice are stored once and a ref can be
 * passed around (in a message, a state) and trusted to mean exactly those bytes. Blobs are immutable.
 */
export interface BlobStore {
  /** Stores bytes held in memory; a string is stored as its UTF-8 bytes. */
  putBuffer(data: Uint8Array | string, meta?: BlobMeta): Promise<BlobInfo>;
  /** Stores a local file, streaming: the file is never held in memory. */
  putFile(path: string, meta?: BlobMeta): Promise<BlobInfo>;
  /** Stores what a stream yields, hashing as it goes; the ref is known only once the stream ends. */
  putStream(source: BlobSource, meta?: BlobMeta): Promise<BlobInfo>;
  /** The blob's description, or undefined when there is none. */
  stat(ref: string): Promise<BlobStat | undefined>;
  /**
   * The blob's bytes, or those in `range`. Rejects with `not_found` for an unknown ref. A whole-blob stream is
   * checked against its ref as it ends and errors with `blob_corrupt` if the bytes were damaged.
   */
  getStream(ref: string, range?: ByteRange): Promise<Readable>;
  /** The whole blob in memory, verified against its ref; for blobs known to be small. */
  getBuffer(ref: string): Promise<Buffer>;
  /**
   * Writes the blob to a local path (parent directories are created), so code that wants files gets one.
   * The file appears whole or not at all, and only once its bytes matched the ref.
   */
  toFile(ref: string, path: string): Promise<void>;
  /** Removes the blob; true when it existed. Callers (GC) decide that nothing refers to it any more. */
  delete(ref: string): Promise<boolean>;
  /** Blobs in ref order after `after`, at most `limit`: pass the last ref back to page on. */
  list(options: { after?: string; limit: number }): Promise<BlobStat[]>;
  close(): Promise<void>;
}

/** What putStream reads: a Node stream or any async iterable of bytes or (UTF-8) strings. */
export type BlobSource = Readable | AsyncIterable<Uint8Array | string>;

/** `sha256:` and 64 lowercase hex digits. */
export type BlobRef = `sha256:${string}`;

export interface BlobMeta {
  /** A MIME type; `application/octet-stream` when not given. The first put of some bytes decides it. */
  contentType?: string;
}

export interface BlobInfo {
  ref: BlobRef;
  size: number;
  contentType: string;
}

export interface BlobStat extends BlobInfo {
  /** Epoch ms of the first put. */
  createdAt: number;
}

/** Bytes `start` (inclusive) to `end` (exclusive, default: the blob's size), like `Buffer.subarray`. */
export interface ByteRange {
  start: number;
  end?: number;
}

export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
export const MAX_LIST_LIMIT = 10_000;

const REF = /^sha256:([0-9a-f]{64})$/;
// Printable ASCII only: it ends up in a JSON sidecar or a row, and later in HTTP headers.
const CONTENT_TYPE = /^[\x21-\x7e][\x20-\x7e]{0,254}$/;

/**
 * The hex digest a ref names. Refs arrive from callers and messages, and the filesystem store turns them
 * into paths, so anything but the exact form is refused here, before it can reach a path or a query.
 */
export function refHex(ref: unknown): string {
  const m = typeof ref === 'string' ? REF.exec(ref) : null;
  if (!m) throw new InvalidArgumentError(`blob ref must be "sha256:" and 64 lowercase hex digits`, { ref });
  return m[1]!;
}

export function isBlobRef(ref: unknown): ref is BlobRef {
  return typeof ref === 'string' && REF.test(ref);
}

export function toRef(hex: string): BlobRef {
  return `sha256:${hex}`;
}

export function contentTypeOf(meta: BlobMeta | undefined): string {
  const type = meta?.contentType ?? DEFAULT_CONTENT_TYPE;
  if (!CONTENT_TYPE.test(type))
    throw new InvalidArgumentError('contentType must be 1-255 printable ASCII characters', {
      contentType: type,
    });
  return type;
}

export function checkListLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT)
    throw new InvalidArgumentError(`list limit must be an integer from 1 to ${MAX_LIST_LIMIT}`, { limit });
}

/** The absolute byte range to read of a blob of `size` bytes; out-of-bounds ranges are refused, not clipped. */
export function resolveRange(range: ByteRange | undefined, size: number): { start: number; end: number } {
  const start = range?.start ?? 0;
  const end = range?.end ?? size;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || start > end || end > size)
    throw new InvalidArgumentError(`byte range must satisfy 0 <= start <= end <= ${size} (the blob's size)`, {
      start,
      end,
      size,
    });
  return { start, end };
}

/** A chunk of a put as bytes (strings as UTF-8); object-mode streams of anything else are refused. */
export function toBytes(chunk: unknown): Uint8Array {
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  if (chunk instanceof Uint8Array) return chunk;
  throw new InvalidArgumentError('a blob stream must yield bytes (Buffer or Uint8Array) or strings');
}

/** A local file to put, as a stream; a path that is not a readable file is the caller's mistake. */
export async function openLocalFile(path: string): Promise<Readable> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
    if (!(await handle.stat()).isFile()) {
      await handle.close();
      throw new InvalidArgumentError(`"${path}" is not a regular file`, { path });
    }
  } catch (error) {
    if (isErrno(error, 'ENOENT') || isErrno(error, 'EISDIR'))
      throw new InvalidArgumentError(`cannot read "${path}": no such file`, { path });
    throw error;
  }
  return handle.createReadStream();
}

export function isErrno(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === code;
}

/** Releases a source a failed put did not finish reading (an open file, a socket). */
export function discard(source: BlobSource): void {
  if (source instanceof Readable) source.destroy();
}

export async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) parts.push(chunk);
  return Buffer.concat(parts);
}

/**
 * Passes `source` on while checking it: always its length, and for a whole blob its digest too (hashing is
 * far cheaper than the read, so every whole read is verified). The error surfaces as the stream's error.
 */
export function verified(
  source: AsyncIterable<Uint8Array>,
  ref: string,
  expect: { length: number; hex?: string },
): Readable {
  async function* check(): AsyncGenerator<Uint8Array> {
    const hash = expect.hex === undefined ? undefined : createHash('sha256');
    let length = 0;
    for await (const chunk of source) {
      length += chunk.length;
      if (length > expect.length) throw corrupt(ref, `more than the expected ${expect.length} bytes`);
      hash?.update(chunk);
      yield chunk;
    }
    if (length !== expect.length) throw corrupt(ref, `${length} bytes instead of ${expect.length}`);
    if (hash && hash.digest('hex') !== expect.hex) throw corrupt(ref, 'its bytes do not match its ref');
  }
  return Readable.from(check(), { objectMode: false });
}

function corrupt(ref: string, why: string): CosmosError {
  return new CosmosError('blob_corrupt', `blob ${ref} is damaged: ${why}`, { ref });
}

/** Streams into a temp file beside `path`, then renames it over `path`, so readers never see half a file. */
export async function writeFileAtomically(source: Readable, path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = join(dirname(path), `.${basename(path)}.${randomUUID()}.tmp`);
  try {
    await pipeline(source, createWriteStream(temp, { flags: 'wx' }));
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}
