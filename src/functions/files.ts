import { mkdir, readdir, rm } from 'node:fs/promises';
import { extname, join, relative } from 'node:path';
import { isBlobRef, type BlobRef, type BlobStore } from '../store/blobs/blob-store.js';
import { FunctionFailure } from './failure.js';

/** Content types of outputs by extension, so `GET /v1/blobs/{ref}` serves them as what they are. */
const CONTENT_TYPES: Record<string, string> = {
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.gif': 'image/gif',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
};

/** The local side of one invocation's file I/O. */
export interface LocalFiles {
  /** Removed after the invocation settles. */
  dir: string;
  inputs: Record<string, string>;
  outDir: string;
}

/**
 * File I/O for functions (SPEC §6): declared inputs arrive as blob references and are materialized as local
 * files the handler reads by path; whatever the handler writes to its output directory is stored as
 * content-addressed blobs and passed on by reference. Each attempt gets a fresh directory, so a retry never
 * sees a half-written output of the attempt before it.
 */
export class FileIo {
  constructor(
    private readonly blobs: BlobStore,
    private readonly root: string,
  ) {}

  async prepare(
    fn: string,
    invocation: string,
    attempt: number,
    input: unknown,
    names: string[],
  ): Promise<LocalFiles> {
    const dir = join(this.root, `${invocation}-${attempt}`);
    const inDir = join(dir, 'in');
    const outDir = join(dir, 'out');
    await mkdir(inDir, { recursive: true });
    await mkdir(outDir, { recursive: true });
    const inputs: Record<string, string> = {};
    const record = (input ?? {}) as Record<string, unknown>;
    for (const name of names) {
      const ref = record[name];
      // A declared input the call leaves out is optional: the handler finds no path for it.
      if (ref === undefined) continue;
      const list = Array.isArray(ref) && ref.every(isBlobRef);
      if (!list && !isBlobRef(ref)) {
        await rm(dir, { recursive: true, force: true });
        throw new FunctionFailure(
          'input',
          `${fn}: input "${name}" must be a blob reference (sha256:…) or a list of them`,
          { function: fn, input: name },
        );
      }
      const path = join(inDir, name);
      if (list) {
        // A list becomes a folder of files named by position (00000, 00001…), in the list's order.
        await mkdir(path);
        for (const [i, r] of ref.entries())
          await this.blobs.toFile(r, join(path, String(i).padStart(5, '0')));
      } else await this.blobs.toFile(ref, path);
      inputs[name] = path;
    }
    return { dir, inputs, outDir };
  }

  /** Stores every file under the output directory; keys are paths relative to it. */
  async collect(files: LocalFiles): Promise<Record<string, BlobRef>> {
    const out: Record<string, BlobRef> = {};
    const entries = await readdir(files.outDir, { recursive: true, withFileTypes: true });
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (!e.isFile()) continue;
      const path = join(e.parentPath, e.name);
      const contentType = CONTENT_TYPES[extname(e.name).toLowerCase()];
      out[relative(files.outDir, path)] = (
        await this.blobs.putFile(path, contentType ? { contentType } : {})
      ).ref;
    }
    return out;
  }

  async discard(files: LocalFiles): Promise<void> {
    await rm(files.dir, { recursive: true, force: true });
  }
}
