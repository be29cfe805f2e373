-- Text search for the executions list: what people look an execution up by (its id, workflow, input, and its
-- output or error once it ends). Rows are appended when an execution starts and when it finishes, never per
-- step. A trigram index (pg_trgm, a trusted extension) lets ILIKE '%text%' use it.
CREATE TABLE execution_search (
  id   text NOT NULL,
  body text NOT NULL
);
CREATE INDEX execution_search_id ON execution_search (id);

DO $$
DECLARE
  ext_schema text;
BEGIN
  -- Installations share the extension: another schema of this database may be creating it right now.
  BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
  EXCEPTION WHEN unique_violation OR duplicate_object THEN
    NULL;
  END;
  SELECT n.nspname INTO ext_schema
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
  WHERE e.extname = 'pg_trgm';
  -- New rows wait in the index's pending list, which every search reads through: a small list keeps that
  -- read short between the flushes (the default 4 MB held some 15,000 executions and took 150 ms to scan).
  EXECUTE format('CREATE INDEX execution_search_body ON execution_search USING gin (body %I.gin_trgm_ops) '
                 'WITH (gin_pending_list_limit = 256)', ext_schema);
END $$;

INSERT INTO execution_search (id, body) SELECT id, left(doc, 4000) FROM executions;

-- The node's connections run with bitmap scans off (the queue's plans need it), and a trigram index is read
-- only through one: the search runs in a function that turns them back on for itself.
CREATE FUNCTION execution_search_ids(pattern text) RETURNS SETOF text
  LANGUAGE sql STABLE ROWS 100 SET enable_bitmapscan = on
  AS $$ SELECT DISTINCT id FROM execution_search WHERE body ILIKE pattern $$;
