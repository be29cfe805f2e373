-- Workflow executions (SPEC §4). An execution is one JSON document (`doc`: state, input, outstanding
-- requests, output, error) rewritten whole by every step; the columns beside it repeat what queries filter
-- on. `seq` counts committed steps and guards every update, so two evaluators can never both apply a step.
-- `owner`/`owner_until`: the node running some of the execution's invocations itself, and until when.

CREATE TABLE executions (
  id           TEXT    PRIMARY KEY,
  workflow     TEXT    NOT NULL,
  version      TEXT    NOT NULL,
  status       TEXT    NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'canceled')),
  priority     INTEGER NOT NULL,
  parent_id    TEXT,
  seq          INTEGER NOT NULL,
  doc          TEXT    NOT NULL,
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL,
  finished_at  INTEGER,
  owner        TEXT,
  owner_until  INTEGER
) STRICT;

CREATE INDEX executions_open ON executions (workflow, version) WHERE status = 'running';
CREATE INDEX executions_created ON executions (created_at, id);
CREATE INDEX executions_parent ON executions (parent_id) WHERE parent_id IS NOT NULL;
-- Executions with invocations running on the node that owns them (local invocations, not queue messages):
-- when the owner stops renewing, another node takes the invocations back to the queue.
CREATE INDEX executions_owned ON executions (owner_until) WHERE owner IS NOT NULL;

-- The trace of each execution: one row per commit, holding the trace events of the steps it made durable
-- (a JSON array), written in that commit. One row rather than one per event: a quick chain of steps writes
-- ten or so events at once, and rows and their index entries are what a commit pays for.
CREATE TABLE execution_events (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  execution_id  TEXT    NOT NULL,
  seq           INTEGER NOT NULL,
  at            INTEGER NOT NULL,
  events        TEXT    NOT NULL
) STRICT;

CREATE INDEX execution_events_execution ON execution_events (execution_id, id);

-- Signals already applied, by their message: a signal redelivered after a crash is recognised, not applied
-- twice (answers to requests need no such table: an answer whose request is no longer outstanding is dropped).
CREATE TABLE applied_signals (
  execution_id  TEXT    NOT NULL,
  message_id    INTEGER NOT NULL,
  PRIMARY KEY (execution_id, message_id)
) STRICT, WITHOUT ROWID;
