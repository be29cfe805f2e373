-- The node registry: every running node writes its row on start and on each heartbeat (see the PostgreSQL
-- migration of the same name). On the embedded store there is usually one node; the table is the same so the
-- registry reads alike on both. Lists are JSON arrays.

CREATE TABLE nodes (
  id            TEXT    PRIMARY KEY,
  name          TEXT    NOT NULL,
  roles         TEXT    NOT NULL,
  pools         TEXT    NOT NULL,
  slots         INTEGER NOT NULL,
  host          TEXT    NOT NULL,
  pid           INTEGER NOT NULL,
  version       TEXT    NOT NULL,
  url           TEXT,
  status        TEXT    NOT NULL CHECK (status IN ('up', 'draining', 'stopped')),
  heartbeat_ms  INTEGER NOT NULL,
  duties        TEXT    NOT NULL,
  started_at    INTEGER NOT NULL,
  heartbeat_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX nodes_heartbeat ON nodes (heartbeat_at);
