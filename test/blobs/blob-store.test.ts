import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CosmosError } from '../../src/errors.js';
import type { BlobStore } from '../../src/store/blobs/blob-store.js';
import { FsBlobStore } from '../../src/store/blobs/fs-blob-store.js';
import { openBlobStore } from '../../src/store/blobs/open-blobs.js';
import { CHUNK_SIZE, PgBlobStore } from '../../src/store/blobs/pg-blob-store.js';
import type { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import type { Store } from '../../src/store/store.js';
import { pgUrl, postgresKind, sqliteKind, type TestPlace } from '../support/stores.js';

const MiB = 1024 * 1024;

/** What a blob store holds underneath, to prove "stored once" and "nothing left behind". */
interface Footprint {
  blobs: number;
  /** Data files (filesystem) or chunk rows (PostgreSQL). */
  pieces: number;
  /** Temp files (filesystem) or upload placeholders (PostgreSQL). */
  leftovers: number;
}

interface Harness {
  blobs: BlobStore;
  footprint(): Promise<Footprint>;
  /** Damages a stored blob's bytes without changing their length. */
  corrupt(ref: string): Promise<void>;
  cleanup(): Promise<void>;
}

interface BlobKind {
  name: string;
  open(): Promise<Harness>;
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );
}

const fsKind: BlobKind = {
  name: 'filesystem',
  async open() {
    const place = sqliteKind.place();
    const store = await place.open();
    const dir = mkdtempSync(join(tmpdir(), 'cosmos-blobs-'));
    const root = join(dir, 'blobs');
    const blobs = await openBlobStore(store, { dir: root });
    expect(blobs).toBeInstanceOf(FsBlobStore);
    const dataFiles = (): string[] =>
      walk(root).filter((p) => /[0-9a-f]{64}$/.test(p) && !p.includes(`${join(root, 'tmp')}`));
    return {
      blobs,
      footprint: () =>
        Promise.resolve({
          blobs: dataFiles().length,
          pieces: dataFiles().length,
          leftovers: readdirSync(join(root, 'tmp')).length,
        }),
      corrupt: (ref) => {
        const path = dataFiles().find((p) => p.endsWith(ref.slice(7)))!;
        const bytes = readFileSync(path);
        bytes[0] = bytes[0]! ^ 0xff;
        writeFileSync(path, bytes);
        return Promise.resolve();
      },
      cleanup: async () => {
        await blobs.close();
        await store.close();
        await place.cleanup();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

const pgKind: BlobKind = {
  name: 'postgres',
  async open() {
    const place: TestPlace = postgresKind.place();
    const store: Store = await place.open({ listen: false });
    const blobs = await openBlobStore(store, { dir: '/nonexistent/unused' });
    expect(blobs).toBeInstanceOf(PgBlobStore);
    const { pool } = store as PostgresStore;
    const count = async (sql: string): Promise<number> =>
      Number((await pool.query<{ n: string }>(sql)).rows[0]!.n);
    return {
      blobs,
      footprint: async () => ({
        blobs: await count(`SELECT count(*) AS n FROM blobs WHERE ref LIKE 'sha256:%'`),
        pieces: await count(`SELECT count(*) AS n FROM blob_chunks`),
        leftovers: await count(`SELECT count(*) AS n FROM blobs WHERE ref NOT LIKE 'sha256:%'`),
      }),
      corrupt: async (ref) => {
        await pool.query(
          `UPDATE blob_chunks SET data = set_byte(data, 0, 255 - get_byte(data, 0)) WHERE ref = $1 AND seq = 0`,
          [ref],
        );
      },
      cleanup: async () => {
        await blobs.close();
        await store.close();
        await place.cleanup();
      },
    };
  },
};

const kinds: BlobKind[] = pgUrl ? [fsKind, pgKind] : [fsKind];

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Yields `bytes` in pieces of `size`, so chunk boundaries fall mid-piece. */
async function* pieces(bytes: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) {
    await Promise.resolve();
    yield bytes.subarray(i, i + size);
  }
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) parts.push(chunk);
  return Buffer.concat(parts);
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CosmosError);
  return (error as CosmosError).code;
}

describe.each(kinds)('blob store conformance on $name', (kind) => {
  let h: Harness;
  let blobs: BlobStore;
  let scratch: string;

  beforeEach(async () => {
    h = await kind.open();
    blobs = h.blobs;
    scratch = mkdtempSync(join(tmpdir(), 'cosmos-blob-scratch-'));
  });

  afterEach(async () => {
    await h.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  });

  it.each([
    ['empty', 0],
    ['small', 11],
    ['exactly one chunk', MiB],
    ['multi-chunk (2.5 MiB)', 2.5 * MiB],
  ])('round-trips a %s blob', async (_, size) => {
    const bytes = randomBytes(size);
    const put = await blobs.putBuffer(bytes);
    expect(put).toEqual({ ref: sha256(bytes), size, contentType: 'application/octet-stream' });
    const back = await blobs.getBuffer(put.ref);
    expect(back.length).toBe(size);
    expect(back.equals(bytes)).toBe(true);
    expect((await readAll(await blobs.getStream(put.ref))).equals(bytes)).toBe(true);
    expect((await h.footprint()).blobs).toBe(1);
  });

  it('stores strings as their UTF-8 bytes', async () => {
    const put = await blobs.putBuffer('héllo ✓');
    expect(put.ref).toBe(sha256(Buffer.from('héllo ✓', 'utf8')));
    expect((await blobs.getBuffer(put.ref)).toString('utf8')).toBe('héllo ✓');
  });

  it('dedupes: the same bytes through every put give one ref, stored once', async () => {
    const bytes = randomBytes(2.5 * MiB);
    const file = join(scratch, 'input.bin');
    writeFileSync(file, bytes);
    const a = await blobs.putBuffer(bytes);
    const b = await blobs.putBuffer(Uint8Array.from(bytes));
    const c = await blobs.putStream(pieces(bytes, 100_000));
    const d = await blobs.putFile(file);
    expect(new Set([a.ref, b.ref, c.ref, d.ref])).toEqual(new Set([sha256(bytes)]));
    const other = await blobs.putBuffer('something else');
    expect(other.ref).not.toBe(a.ref);
    const footprint = await h.footprint();
    expect(footprint.blobs).toBe(2);
    expect(footprint.leftovers).toBe(0);
    if (kind.name === 'postgres') expect(footprint.pieces).toBe(3 + 1);
    expect((await blobs.list({ limit: 10 })).map((x) => x.ref).sort()).toEqual([a.ref, other.ref].sort());
  });

  it('hashes large files and streams correctly, whatever the piece sizes', async () => {
    const bytes = randomBytes(5 * MiB + 123);
    const file = join(scratch, 'large.bin');
    writeFileSync(file, bytes);
    const expected = sha256(bytes);
    const fromFile = await blobs.putFile(file, { contentType: 'application/x-tar' });
    expect(fromFile).toEqual({ ref: expected, size: bytes.length, contentType: 'application/x-tar' });
    await blobs.delete(expected);
    const fromStream = await blobs.putStream(pieces(bytes, 7_777));
    expect(fromStream.ref).toBe(expected);
    expect(fromStream.size).toBe(bytes.length);
    await blobs.delete(expected);
    // A Node stream too, with a piece exactly one chunk long and one straddling the next boundary.
    const fromReadable = await blobs.putStream(
      Readable.from([bytes.subarray(0, MiB), bytes.subarray(MiB, 3 * MiB + 1), bytes.subarray(3 * MiB + 1)]),
    );
    expect(fromReadable.ref).toBe(expected);
    expect(
      createHash('sha256')
        .update(await blobs.getBuffer(expected))
        .digest('hex'),
    ).toBe(expected.slice(7));
    if (kind.name === 'postgres') expect((await h.footprint()).pieces).toBe(6);
  });

  it('reads ranges, across chunk boundaries included', async () => {
    const size = 2.5 * MiB;
    const bytes = randomBytes(size);
    const { ref } = await blobs.putBuffer(bytes);
    const ranges: [number, number | undefined][] = [
      [0, 0],
      [0, 1],
      [5, 17],
      [MiB - 10, MiB + 10],
      [MiB, 2 * MiB],
      [MiB - 1, 2 * MiB + 1],
      [100, undefined],
      [size - 1, size],
      [size, size],
      [0, size],
    ];
    for (const [start, end] of ranges) {
      const got = await readAll(await blobs.getStream(ref, end === undefined ? { start } : { start, end }));
      expect({ start, end, equal: got.equals(bytes.subarray(start, end)) }).toEqual({
        start,
        end,
        equal: true,
      });
    }
    for (const bad of [{ start: 5, end: 4 }, { start: 0, end: size + 1 }, { start: -1 }, { start: 1.5 }])
      expect(await codeOf(blobs.getStream(ref, bad))).toBe('invalid_argument');
  });

  it('stats blobs with their size, content type and creation time', async () => {
    const before = Date.now();
    const put = await blobs.putBuffer('{"a":1}', { contentType: 'application/json' });
    const after = Date.now();
    const stat = await blobs.stat(put.ref);
    expect(stat).toMatchObject({ ref: put.ref, size: 7, contentType: 'application/json' });
    expect(stat!.createdAt).toBeGreaterThanOrEqual(before);
    expect(stat!.createdAt).toBeLessThanOrEqual(after);
    expect(await blobs.stat(sha256(Buffer.from('never put')))).toBeUndefined();
  });

  it('keeps the content type of the first put and refuses malformed ones', async () => {
    const first = await blobs.putBuffer('same', { contentType: 'text/plain; charset=utf-8' });
    const second = await blobs.putStream(pieces(Buffer.from('same'), 2), { contentType: 'text/html' });
    expect(first.contentType).toBe('text/plain; charset=utf-8');
    expect(second.contentType).toBe('text/plain; charset=utf-8');
    expect((await blobs.stat(first.ref))!.contentType).toBe('text/plain; charset=utf-8');
    for (const contentType of ['', 'text/plain\r\nX-Evil: 1', 'x'.repeat(256)])
      expect(await codeOf(blobs.putBuffer('x', { contentType }))).toBe('invalid_argument');
  });

  it('deletes, and a deleted blob can be put again', async () => {
    const bytes = randomBytes(1.5 * MiB);
    const { ref } = await blobs.putBuffer(bytes);
    expect(await blobs.delete(ref)).toBe(true);
    expect(await blobs.stat(ref)).toBeUndefined();
    expect(await codeOf(blobs.getStream(ref))).toBe('not_found');
    expect(await blobs.delete(ref)).toBe(false);
    expect(await h.footprint()).toEqual({ blobs: 0, pieces: 0, leftovers: 0 });
    expect((await blobs.putStream(pieces(bytes, 65_536))).ref).toBe(ref);
    expect((await blobs.getBuffer(ref)).equals(bytes)).toBe(true);
  });

  it('answers not_found for a well-formed ref it does not hold', async () => {
    const ref = sha256(Buffer.from('nobody put this'));
    expect(await codeOf(blobs.getStream(ref))).toBe('not_found');
    expect(await codeOf(blobs.getBuffer(ref))).toBe('not_found');
    expect(await codeOf(blobs.toFile(ref, join(scratch, 'out')))).toBe('not_found');
    expect(existsSync(join(scratch, 'out'))).toBe(false);
  });

  it('refuses malformed refs and traversal attempts with invalid_argument', async () => {
    const hex = 'a'.repeat(64);
    const bad = [
      'sha256:../../etc/passwd',
      `sha256:../../${hex.slice(6)}`,
      `sha256:${hex}/../../x`,
      `sha256:${'A'.repeat(64)}`,
      `sha256:${hex.slice(1)}`,
      `sha256:${hex}0`,
      `sha256:${hex}\n`,
      `md5:${hex}`,
      hex,
      '',
      42 as unknown as string,
    ];
    for (const ref of bad) {
      const codes = [
        await codeOf(blobs.stat(ref)),
        await codeOf(blobs.getStream(ref)),
        await codeOf(blobs.getBuffer(ref)),
        await codeOf(blobs.toFile(ref, join(scratch, 'out'))),
        await codeOf(blobs.delete(ref)),
        await codeOf(blobs.list({ after: ref, limit: 1 })),
      ];
      expect({ ref, codes }).toEqual({ ref, codes: Array(6).fill('invalid_argument') });
    }
  });

  it('stores concurrent puts of the same content once', async () => {
    const bytes = randomBytes(2.5 * MiB);
    const results = await Promise.all([
      ...Array.from({ length: 4 }, () => blobs.putBuffer(bytes)),
      ...Array.from({ length: 4 }, (_, i) => blobs.putStream(pieces(bytes, 50_000 + i))),
    ]);
    expect(new Set(results.map((r) => r.ref))).toEqual(new Set([sha256(bytes)]));
    expect(results.every((r) => r.size === bytes.length)).toBe(true);
    const footprint = await h.footprint();
    expect(footprint).toEqual({ blobs: 1, pieces: kind.name === 'postgres' ? 3 : 1, leftovers: 0 });
    expect((await blobs.getBuffer(sha256(bytes))).equals(bytes)).toBe(true);
  });

  it('materializes a blob as a local file, whole', async () => {
    const bytes = randomBytes(2 * MiB + 3);
    const { ref } = await blobs.putBuffer(bytes);
    const target = join(scratch, 'deep', 'er', 'input.bin');
    await blobs.toFile(ref, target);
    expect(readFileSync(target).equals(bytes)).toBe(true);
    await blobs.toFile(ref, target);
    expect(readdirSync(join(scratch, 'deep', 'er'))).toEqual(['input.bin']);
  });

  it('lists in ref order, page by page', async () => {
    const refs = await Promise.all(Array.from({ length: 7 }, (_, i) => blobs.putBuffer(`blob ${i}`)));
    const sorted = refs.map((r) => r.ref).sort();
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await blobs.list(after === undefined ? { limit: 3 } : { after, limit: 3 });
      if (page.length === 0) break;
      expect(page.length).toBeLessThanOrEqual(3);
      seen.push(...page.map((b) => b.ref));
      after = page[page.length - 1]!.ref;
    }
    expect(seen).toEqual(sorted);
    const [firstBlob] = await blobs.list({ after: sorted[3], limit: 1 });
    expect(firstBlob).toMatchObject({ ref: sorted[4], size: 6, contentType: 'application/octet-stream' });
    for (const limit of [0, -1, 1.5, 10_001])
      expect(await codeOf(blobs.list({ limit }))).toBe('invalid_argument');
  });

  it('detects damaged bytes on a whole read', async () => {
    const bytes = randomBytes(MiB + 5);
    const { ref } = await blobs.putBuffer(bytes);
    await h.corrupt(ref);
    expect(await codeOf(blobs.getBuffer(ref))).toBe('blob_corrupt');
    expect(await codeOf(blobs.toFile(ref, join(scratch, 'bad')))).toBe('blob_corrupt');
    expect(existsSync(join(scratch, 'bad'))).toBe(false);
    expect(readdirSync(scratch)).toEqual([]);
  });

  it('leaves nothing behind when the source of a put fails', async () => {
    async function* failing(): AsyncGenerator<Buffer> {
      yield randomBytes(MiB + 10);
      await Promise.resolve();
      throw new Error('source broke');
    }
    await expect(blobs.putStream(failing())).rejects.toThrow('source broke');
    expect(await h.footprint()).toEqual({ blobs: 0, pieces: 0, leftovers: 0 });
    expect(await codeOf(blobs.putFile(join(scratch, 'missing.bin')))).toBe('invalid_argument');
    expect(await codeOf(blobs.putFile(scratch))).toBe('invalid_argument');
    expect(await codeOf(blobs.putStream(Readable.from([{ not: 'bytes' }])))).toBe('invalid_argument');
    expect(await h.footprint()).toEqual({ blobs: 0, pieces: 0, leftovers: 0 });
  });

  it('refuses calls after close', async () => {
    const { ref } = await blobs.putBuffer('x');
    await blobs.close();
    expect(await codeOf(blobs.stat(ref))).toBe('store_closed');
    expect(await codeOf(blobs.putBuffer('y'))).toBe('store_closed');
  });
});

describe('filesystem blob layout', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cosmos-blobs-layout-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps bytes at <root>/ab/cd/<hex> with a JSON sidecar, and sweeps stale temp files on open', async () => {
    const blobs = await FsBlobStore.open(dir);
    const { ref } = await blobs.putBuffer('layout', { contentType: 'text/plain' });
    const hex = ref.slice(7);
    const path = join(dir, hex.slice(0, 2), hex.slice(2, 4), hex);
    expect(readFileSync(path, 'utf8')).toBe('layout');
    expect(JSON.parse(readFileSync(`${path}.json`, 'utf8'))).toMatchObject({ contentType: 'text/plain' });
    await blobs.close();

    const { utimesSync } = await import('node:fs');
    writeFileSync(join(dir, 'tmp', 'stale'), 'x');
    writeFileSync(join(dir, 'tmp', 'fresh'), 'x');
    const old = new Date(Date.now() - 2 * 24 * 60 * 60 * 1000);
    utimesSync(join(dir, 'tmp', 'stale'), old, old);
    const reopened = await FsBlobStore.open(dir);
    expect(readdirSync(join(dir, 'tmp'))).toEqual(['fresh']);
    expect(await reopened.getBuffer(ref)).toEqual(Buffer.from('layout'));
    await reopened.close();
  });

  it('a blob whose sidecar was lost is still served, with defaults', async () => {
    const blobs = await FsBlobStore.open(dir);
    const { ref } = await blobs.putBuffer('orphan', { contentType: 'text/plain' });
    const hex = ref.slice(7);
    rmSync(join(dir, hex.slice(0, 2), hex.slice(2, 4), `${hex}.json`));
    expect(await blobs.stat(ref)).toMatchObject({ size: 6, contentType: 'application/octet-stream' });
    expect((await blobs.getBuffer(ref)).toString()).toBe('orphan');
    await blobs.close();
  });
});

describe('chunk size', () => {
  it('is 1 MiB, part of the stored format', () => {
    expect(CHUNK_SIZE).toBe(MiB);
  });
});
