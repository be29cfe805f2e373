import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { CosmosError } from '../../errors.js';
import { isBlobRef, resolveRange, type BlobStore } from '../../store/blobs/blob-store.js';

const RANGE = /^bytes=(\d*)-(\d*)$/;

/**
 * What functions produced, for people to fetch: `GET /v1/blobs/{ref}` streams a blob with its content type
 * and answers single byte ranges (so a browser can seek in a video). Blobs are immutable, named by their
 * content, so they are cacheable forever.
 */
export function blobRoutes(app: FastifyInstance, blobs: BlobStore): void {
  // Uploads (sources for functions with file inputs) stream straight into the blob store, in a scope of
  // their own, so the JSON routes keep their body limit and parser.
  void app.register((scope, _opts, done) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    scope.post('/v1/blobs', async (req, reply) => {
      const type = req.headers['content-type']?.split(';')[0]?.trim();
      const info = await blobs.putStream((req.body as Readable | undefined) ?? req.raw, {
        ...(type && type !== 'application/x-www-form-urlencoded' && { contentType: type }),
      });
      return reply.status(201).send(info);
    });
    done();
  });
  app.get<{ Params: { ref: string } }>('/v1/blobs/:ref', async (req, reply) => {
    const { ref } = req.params;
    if (!isBlobRef(ref))
      throw new CosmosError('invalid_argument', 'a blob reference is sha256: and 64 hex digits', { ref });
    const stat = await blobs.stat(ref);
    if (!stat) throw new CosmosError('blob_not_found', `no blob ${ref}`, { ref });
    reply
      .header('content-type', stat.contentType)
      .header('accept-ranges', 'bytes')
      .header('etag', `"${ref}"`)
      .header('cache-control', 'public, max-age=31536000, immutable');
    if (req.headers['if-none-match'] === `"${ref}"`) return reply.status(304).send();
    const range = parseRange(req.headers.range, stat.size);
    if (range === 'unsatisfiable') {
      reply.header('content-range', `bytes */${stat.size}`);
      throw new CosmosError('range_not_satisfiable', `blob ${ref} has ${stat.size} bytes`, {
        size: stat.size,
      });
    }
    if (range) {
      const { start, end } = resolveRange(range, stat.size);
      reply
        .status(206)
        .header('content-range', `bytes ${start}-${end - 1}/${stat.size}`)
        .header('content-length', end - start);
      return reply.send(await blobs.getStream(ref, range));
    }
    reply.header('content-length', stat.size);
    return reply.send(await blobs.getStream(ref));
  });
}

/** One `bytes=a-b` range (the only kind answered; several ranges get the whole blob). */
function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = header ? RANGE.exec(header.trim()) : null;
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    // A suffix: the last N bytes.
    start = Math.max(0, size - Number(m[2]));
    end = size;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size : Math.min(size, Number(m[2]) + 1);
  }
  if (start >= size || start >= end) return 'unsatisfiable';
  return { start, end };
}
