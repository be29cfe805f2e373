-- Content-addressed blobs (docs/blobs.md): function inputs and outputs, artifacts.
--
-- A blob is named by the SHA-256 of its bytes (`sha256:<64 hex>`) and never changes. Its bytes are split in
-- chunks of exactly 1 MiB (the last one shorter) so a read streams chunk by chunk and a range read fetches
-- only the chunks it needs; the chunk size is part of this format, as offsets are computed from it.
-- Refs compare bytewise (COLLATE "C"): listing pages through them in the order the filesystem store uses.

CREATE TABLE blobs (
  ref           text COLLATE "C" PRIMARY KEY,
  size          bigint NOT NULL,
  content_type  text   NOT NULL,
  created_at    bigint NOT NULL
);

CREATE TABLE blob_chunks (
  ref   text COLLATE "C" NOT NULL REFERENCES blobs ON DELETE CASCADE,
  seq   integer NOT NULL,
  data  bytea   NOT NULL,
  PRIMARY KEY (ref, seq)
);
