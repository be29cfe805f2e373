-- Search rows leave the commit path. A step that starts or finishes an execution appends its search row to a
-- plain table with no index (an append in the same transaction, so a crash loses none), and the search-index
-- duty moves the backlog into the trigram-indexed table in batches, so no commit waits for the trigram index.
-- Searches read both tables, so a search finds an execution the moment its commit lands, indexed yet or not.
CREATE TABLE execution_search_backlog (
  id   text NOT NULL,
  body text NOT NULL
);

CREATE OR REPLACE FUNCTION execution_search_ids(pattern text) RETURNS SETOF text
  LANGUAGE sql STABLE ROWS 100 SET enable_bitmapscan = on
  AS $$ SELECT id FROM execution_search WHERE body ILIKE pattern
        UNION
        SELECT id FROM execution_search_backlog WHERE body ILIKE pattern $$;
