-- Workflow executions (SPEC §4). An execution is one JSON document (`doc`: state, input, outstanding
-- requests, output, error) rewritten whole by every step; the columns beside it repeat what queries filter
-- on. `seq` counts committed steps and guards every update, so two evaluators can never both apply a step.
-- `owner`/`owner_until`: the node running some of the execution's invocations itself, and until when.
-- `doc` is text, not jsonb: it is written on every step and read whole; only the listing's text search reads
-- inside it (as text).

CREATE TABLE executions (
  id           text   PRIMARY KEY,
  workflow     text   NOT NULL,
  version      text   NOT NULL,
  status       text   NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'canceled')),
  priority     bigint NOT NULL,
  parent_id    text,
  seq          integer NOT NULL,
  doc          text   NOT NULL,
  created_at   bigint NOT NULL,
  updated_at   bigint NOT NULL,
  finished_at  bigint,
  owner        text,
  owner_until  bigint
) WITH (fillfactor = 80);

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
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  execution_id  text    NOT NULL,
  seq           integer NOT NULL,
  at            bigint  NOT NULL,
  events        text    NOT NULL
);

CREATE INDEX execution_events_execution ON execution_events (execution_id, id);

-- Signals already applied, by their message: a signal redelivered after a crash is recognised, not applied
-- twice (answers to requests need no such table: an answer whose request is no longer outstanding is dropped).
CREATE TABLE applied_signals (
  execution_id  text   NOT NULL,
  message_id    bigint NOT NULL,
  PRIMARY KEY (execution_id, message_id)
);

-- Raised by a group of workflow steps committed in one statement when one of them lost its sequence check:
-- the whole statement rolls back and the store retries the steps one by one to find the loser.
CREATE FUNCTION cosmos_steps_written(written bigint, expected bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
  IF written <> expected THEN
    RAISE EXCEPTION 'an execution moved under this step (% of % written)', written, expected
      USING ERRCODE = 'CS001';
  END IF;
  RETURN written;
END
$$;
