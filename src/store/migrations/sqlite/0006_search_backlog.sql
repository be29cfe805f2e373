-- Search rows leave the commit path. A step that starts or finishes an execution appends its search row to a
-- plain table (in the same transaction, so a crash loses none), and the search-index duty moves the backlog
-- into the trigram index in batches. Searches read both, so a search finds an execution the moment its commit
-- lands, indexed yet or not.
CREATE TABLE execution_search_backlog (
  id   TEXT NOT NULL,
  body TEXT NOT NULL
);
