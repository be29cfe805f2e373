import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { NotFoundError, StoreClosedError } from '../../errors.js';
import {
  checkListLimit,
  collect,
  contentTypeOf,
  DEFAULT_CONTENT_TYPE,
  discard,
  isErrno,
  openLocalFile,
  refHex,
  resolveRange,
  toBytes,
  toRef,
  verified,
  writeFileAtomically,
  type BlobInfo,
  type BlobMeta,
  type BlobSource,
  type BlobStat,
  type BlobStore,
  type ByteRange,
} from './blob-store.js';

const TEMP_DIR = 'tmp';
const FAN_OUT = /^[0-9a-f]{2}$/;
const HEX = /^[0-9a-f]{64}$/;
/** Temp files this old are leftovers of a crashed put (a live put keeps touching its file). */
const STALE_TEMP_MS = 24 * 60 * 60 * 1000;

interface Sidecar {
  contentType: string;
  createdAt: number;
}

/**
 * Blobs as files under one root: `<root>/ab/cd/<hex>` holds the bytes and `<hex>.json` beside it the content
 * type and creation time. A blob exists once its data file does. Every write lands in `<root>/tmp` first and
 * is renamed into place after an fsync, so a crash never leaves a partial blob under a valid name; two puts
 * of the same bytes rename identical files over each other, which is harmless.
 */
export class FsBlobStore implements BlobStore {
  private closed = false;

  private constructor(readonly root: string) {}

  static async open(root: string): Promise<FsBlobStore> {
    await mkdir(join(root, TEMP_DIR), { recursive: true });
    await sweepTemps(join(root, TEMP_DIR));
    return new FsBlobStore(root);
  }

  async putBuffer(data: Uint8Array | string, meta?: BlobMeta): Promise<BlobInfo> {
    const contentType = contentTypeOf(meta);
    this.ensureOpen();
    const bytes = toBytes(data);
    const hex = createHash('sha256').update(bytes).digest('hex');
    // The bytes are in hand, so a blob that exists already costs no write at all.
    const existing = await this.read(hex);
    if (existing) return info(existing);
    const temp = this.tempPath();
    await this.writeTemp(temp, async (file) => {
      await file.writeFile(bytes);
    });
    return this.commit(temp, hex, bytes.length, contentType);
  }

  async putFile(path: string, meta?: BlobMeta): Promise<BlobInfo> {
    contentTypeOf(meta);
    this.ensureOpen();
    return this.putStream(await openLocalFile(path), meta);
  }

  async putStream(source: BlobSource, meta?: BlobMeta): Promise<BlobInfo> {
    const contentType = contentTypeOf(meta);
    this.ensureOpen();
    const hash = createHash('sha256');
    let size = 0;
    const temp = this.tempPath();
    await this.writeTemp(temp, async (file) => {
      for await (const chunk of source as AsyncIterable<unknown>) {
        const bytes = toBytes(chunk);
        hash.update(bytes);
        size += bytes.length;
        await writeAll(file, bytes);
      }
    }).catch((error: unknown) => {
      discard(source);
      throw error;
    });
    return this.commit(temp, hash.digest('hex'), size, contentType);
  }

  async stat(ref: string): Promise<BlobStat | undefined> {
    const hex = refHex(ref);
    this.ensureOpen();
    return this.read(hex);
  }

  async getStream(ref: string, range?: ByteRange): Promise<Readable> {
    const hex = refHex(ref);
    this.ensureOpen();
    let file: FileHandle;
    try {
      file = await open(this.dataPath(hex), 'r');
    } catch (error) {
      if (isErrno(error, 'ENOENT')) throw new NotFoundError('blob', ref);
      throw error;
    }
    // Reading through the open handle keeps the bytes readable even if the blob is deleted meanwhile.
    try {
      const { size } = await file.stat();
      const { start, end } = resolveRange(range, size);
      const expect = { length: end - start, hex: start === 0 && end === size ? hex : undefined };
      if (start === end) {
        await file.close();
        return verified(Readable.from([]), ref, expect);
      }
      return verified(file.createReadStream({ start, end: end - 1 }), ref, expect);
    } catch (error) {
      await file.close();
      throw error;
    }
  }

  async getBuffer(ref: string): Promise<Buffer> {
    return collect(await this.getStream(ref));
  }

  async toFile(ref: string, path: string): Promise<void> {
    await writeFileAtomically(await this.getStream(ref), path);
  }

  async delete(ref: string): Promise<boolean> {
    const hex = refHex(ref);
    this.ensureOpen();
    // Data first: once it is gone the blob is gone, whatever happens to the sidecar.
    let existed = true;
    await rm(this.dataPath(hex)).catch((error: unknown) => {
      if (!isErrno(error, 'ENOENT')) throw error;
      existed = false;
    });
    await rm(sidecarPath(this.dataPath(hex)), { force: true });
    return existed;
  }

  async list(options: { after?: string; limit: number }): Promise<BlobStat[]> {
    checkListLimit(options.limit);
    const after = options.after === undefined ? '' : refHex(options.after);
    this.ensureOpen();
    const out: BlobStat[] = [];
    // Fixed-width lowercase hex sorts the same as a path and as a ref, so walking the fan-out directories in
    // name order yields refs in order, and whole directories before `after` are skipped unread.
    for (const a of await fanOut(this.root)) {
      if (a < after.slice(0, 2)) continue;
      for (const b of await fanOut(join(this.root, a))) {
        if (a + b < after.slice(0, 4)) continue;
        const names = (await readdir(join(this.root, a, b)))
          .filter((n) => HEX.test(n) && n.startsWith(a + b) && n > after)
          .sort();
        for (const name of names) {
          const blob = await this.read(name);
          if (blob) out.push(blob);
          if (out.length === options.limit) return out;
        }
      }
    }
    return out;
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  private async read(hex: string): Promise<BlobStat | undefined> {
    let size: number;
    let mtime: number;
    try {
      ({ size, mtimeMs: mtime } = await stat(this.dataPath(hex)));
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return undefined;
      throw error;
    }
    // A put racing a delete can leave data without its sidecar; the bytes are still the blob.
    const side = await readSidecar(sidecarPath(this.dataPath(hex)));
    return {
      ref: toRef(hex),
      size,
      contentType: side?.contentType ?? DEFAULT_CONTENT_TYPE,
      createdAt: side?.createdAt ?? Math.floor(mtime),
    };
  }

  /** Moves a written, synced temp file into place as blob `hex`, unless that blob exists already. */
  private async commit(temp: string, hex: string, size: number, contentType: string): Promise<BlobInfo> {
    try {
      const existing = await this.read(hex);
      if (existing) return info(existing);
      const path = this.dataPath(hex);
      await mkdir(dirname(path), { recursive: true });
      // The sidecar goes first, so a blob whose data is in place always has one (barring a racing delete).
      const sideTemp = this.tempPath();
      await this.writeTemp(sideTemp, async (file) => {
        await file.writeFile(JSON.stringify({ contentType, createdAt: Date.now() } satisfies Sidecar));
      });
      await rename(sideTemp, sidecarPath(path)).catch(async (error: unknown) => {
        await rm(sideTemp, { force: true });
        throw error;
      });
      await rename(temp, path);
      await syncDir(dirname(path));
      // Another put of the same bytes may have won the race; what is stored is the answer.
      const stored = await this.read(hex);
      return stored ? info(stored) : { ref: toRef(hex), size, contentType };
    } finally {
      await rm(temp, { force: true });
    }
  }

  /** Creates `temp`, lets `write` fill it, and syncs it: after a rename, its bytes survive a power loss. */
  private async writeTemp(temp: string, write: (file: FileHandle) => Promise<void>): Promise<void> {
    try {
      const file = await open(temp, 'wx');
      try {
        await write(file);
        await file.sync();
      } finally {
        await file.close();
      }
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  private dataPath(hex: string): string {
    return join(this.root, hex.slice(0, 2), hex.slice(2, 4), hex);
  }

  private tempPath(): string {
    return join(this.root, TEMP_DIR, randomUUID());
  }

  private ensureOpen(): void {
    if (this.closed) throw new StoreClosedError();
  }
}

function info(blob: BlobStat): BlobInfo {
  return { ref: blob.ref, size: blob.size, contentType: blob.contentType };
}

function sidecarPath(dataPath: string): string {
  return `${dataPath}.json`;
}

async function readSidecar(path: string): Promise<Sidecar | undefined> {
  try {
    const side = JSON.parse(await readFile(path, 'utf8')) as Partial<Sidecar>;
    if (typeof side.contentType === 'string' && typeof side.createdAt === 'number')
      return { contentType: side.contentType, createdAt: side.createdAt };
    return undefined;
  } catch {
    return undefined;
  }
}

async function writeAll(file: FileHandle, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length;) {
    const { bytesWritten } = await file.write(bytes, offset, bytes.length - offset);
    offset += bytesWritten;
  }
}

/** Makes a rename into `dir` durable; platforms that cannot open a directory (Windows) skip it. */
async function syncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // best effort: the data file itself was synced before the rename
  } finally {
    await handle?.close();
  }
}

async function fanOut(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => FAN_OUT.test(n)).sort();
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return [];
    throw error;
  }
}

async function sweepTemps(dir: string): Promise<void> {
  const cutoff = Date.now() - STALE_TEMP_MS;
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    const s = await stat(path).catch(() => undefined);
    if (s && s.mtimeMs < cutoff) await rm(path, { force: true, recursive: true });
  }
}
