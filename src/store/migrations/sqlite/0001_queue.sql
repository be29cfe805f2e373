-- Durable priority queue (SPEC §5). Times are epoch milliseconds. SQLite has one writer at a time, so
-- exclusivity is checked inside the write transaction and needs no lease table.

CREATE TABLE queues (
  name            TEXT PRIMARY KEY,
  lease_ms        INTEGER NOT NULL CHECK (lease_ms > 0),
  delay_ms        INTEGER NOT NULL CHECK (delay_ms >= 0),
  max_attempts    INTEGER NOT NULL CHECK (max_attempts > 0),
  retention_ms    INTEGER NOT NULL CHECK (retention_ms >= 0),
  enqueue_paused  INTEGER NOT NULL DEFAULT 0,
  dequeue_paused  INTEGER NOT NULL DEFAULT 0,
  exclusive       INTEGER NOT NULL DEFAULT 0,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE messages (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  queue            TEXT    NOT NULL,
  state            TEXT    NOT NULL
                   CHECK (state IN ('invisible', 'pending', 'running', 'completed', 'canceled', 'errored')),
  priority         INTEGER NOT NULL,
  payload          TEXT    NOT NULL,
  metadata         TEXT,
  idempotency_key  TEXT,
  exclusivity_key  TEXT,
  attempts         INTEGER NOT NULL DEFAULT 0,
  max_attempts     INTEGER NOT NULL,
  lease_token      TEXT,
  lease_expires_at INTEGER,
  visible_at       INTEGER NOT NULL,
  created_at       INTEGER NOT NULL,
  leased_at        INTEGER,
  finished_at      INTEGER,
  last_error       TEXT
) STRICT;

CREATE INDEX messages_pending   ON messages (queue, priority, id)     WHERE state = 'pending';
CREATE INDEX messages_invisible ON messages (queue, visible_at)       WHERE state = 'invisible';
CREATE INDEX messages_running   ON messages (queue, lease_expires_at) WHERE state = 'running';
CREATE INDEX messages_running_key ON messages (queue, exclusivity_key) WHERE state = 'running' AND exclusivity_key IS NOT NULL;
CREATE INDEX messages_finished  ON messages (queue, finished_at)      WHERE state IN ('completed', 'canceled', 'errored');
CREATE UNIQUE INDEX messages_idempotency ON messages (queue, idempotency_key) WHERE idempotency_key IS NOT NULL;
