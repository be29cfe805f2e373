-- Text search for the executions list: what people look an execution up by (its id, workflow, input, and its
-- output or error once it ends). Rows are appended when an execution starts and when it finishes, never per
-- step. The trigram tokenizer lets LIKE '%text%' use the index.
CREATE VIRTUAL TABLE execution_search USING fts5(id UNINDEXED, body, tokenize = 'trigram');

INSERT INTO execution_search (id, body) SELECT id, substr(doc, 1, 4000) FROM executions;
