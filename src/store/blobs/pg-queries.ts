/**
 * Every SQL statement the PostgreSQL blob store runs, by name (migration 0003 has the tables). They run as
 * named prepared statements under `blobs.<key>`, a prefix that keeps them apart from the queue's names on
 * the shared pool's connections.
 */
export const blobQueries = {
  stat: `SELECT ref, size, content_type, created_at FROM blobs WHERE ref = $1`,
  /**
   * Takes a ref for this transaction. When another transaction holds the same ref uncommitted, this waits for
   * it: two puts of the same bytes never store them twice. No row back means the ref exists already.
   */
  claim: `
    INSERT INTO blobs (ref, size, content_type, created_at) VALUES ($1, $2, $3, $4)
    ON CONFLICT (ref) DO NOTHING RETURNING ref`,
  insertChunk: `INSERT INTO blob_chunks (ref, seq, data) VALUES ($1, $2, $3)`,
  /**
   * Hands the chunks of a streamed upload, written under a temporary ref before the digest was known, to
   * their real ref. The data column is not changed, so PostgreSQL keeps its out-of-line (TOAST) copy.
   */
  adoptChunks: `UPDATE blob_chunks SET ref = $2 WHERE ref = $1`,
  /** Chunks go with their blob (ON DELETE CASCADE). */
  delete: `DELETE FROM blobs WHERE ref = $1`,
  chunk: `SELECT data FROM blob_chunks WHERE ref = $1 AND seq = $2`,
  list: `
    SELECT ref, size, content_type, created_at FROM blobs WHERE ref > $1 ORDER BY ref LIMIT $2`,
} as const;

export type BlobQueryName = keyof typeof blobQueries;
