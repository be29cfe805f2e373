-- Messages stop being rewritten on every transition (SPEC §5 semantics unchanged).
--
-- In 0001 each message row was updated when leased and again when finished. On PostgreSQL an update writes a
-- whole new row version plus an entry in every affected index, and that was most of the queue's cost. Now:
--   messages  the immutable body of each message, written once at enqueue and deleted by GC;
--   ready     one narrow row per pending or delayed message; leasing deletes it (no new row version);
--   leases    one row per dequeue call holding the leased ids, attempts, expiries and last errors;
--   finished  one row per finishing call and queue, holding the finished ids, for lookups and GC.
-- A message's state is where it is: ready (pending or invisible), a lease (running) or finished.

ALTER TABLE messages RENAME TO messages_v1;
ALTER TABLE messages_v1 RENAME CONSTRAINT messages_pkey TO messages_v1_pkey;
ALTER INDEX messages_idempotency RENAME TO messages_v1_idempotency;
DROP INDEX messages_pending, messages_invisible, messages_running, messages_finished;

CREATE TABLE messages (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  queue            text    NOT NULL,
  priority         bigint  NOT NULL,
  payload          text    NOT NULL,
  metadata         jsonb,
  idempotency_key  text,
  exclusivity_key  text,
  max_attempts     integer NOT NULL,
  visible_at       bigint  NOT NULL,
  created_at       bigint  NOT NULL
);
CREATE UNIQUE INDEX messages_idempotency ON messages (queue, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE ready (
  id          bigint  PRIMARY KEY,
  queue       text    NOT NULL,
  priority    bigint  NOT NULL,
  visible_at  bigint  NOT NULL,
  delayed     boolean NOT NULL,
  attempts    integer NOT NULL DEFAULT 0,
  last_error  text,
  leased_at   bigint
);
CREATE INDEX ready_pending ON ready (queue, priority, id) WHERE NOT delayed;
CREATE INDEX ready_delayed ON ready (queue, visible_at)   WHERE delayed;

-- The arrays are parallel and sorted by id; expires_at is the earliest member expiry.
CREATE TABLE leases (
  token       text    PRIMARY KEY,
  queue       text    NOT NULL,
  leased_at   bigint  NOT NULL,
  expires_at  bigint  NOT NULL,
  exclusive   boolean NOT NULL,
  ids         bigint[]  NOT NULL,
  attempts    integer[] NOT NULL,
  expires     bigint[]  NOT NULL,
  errors      text[]    NOT NULL
);
CREATE INDEX leases_expiry ON leases (queue, expires_at);

CREATE TABLE finished (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  queue        text   NOT NULL,
  state        text   NOT NULL CHECK (state IN ('completed', 'canceled', 'errored')),
  finished_at  bigint NOT NULL,
  ids          bigint[]  NOT NULL,
  attempts     integer[] NOT NULL,
  leased       bigint[]  NOT NULL,
  errors       text[]    NOT NULL
);
CREATE INDEX finished_age ON finished (queue, finished_at);
CREATE INDEX finished_ids ON finished USING gin (ids);

CREATE INDEX exclusive_leases_message ON exclusive_leases (message_id);

-- Carry every message of a 0001 database over in its state.
INSERT INTO messages (id, queue, priority, payload, metadata, idempotency_key, exclusivity_key, max_attempts,
                      visible_at, created_at)
OVERRIDING SYSTEM VALUE
SELECT id, queue, priority, payload, metadata, idempotency_key, exclusivity_key, max_attempts, visible_at, created_at
FROM messages_v1;
SELECT setval(pg_get_serial_sequence('messages', 'id'), coalesce((SELECT max(id) FROM messages_v1), 0) + 1, false);

INSERT INTO ready (id, queue, priority, visible_at, delayed, attempts, last_error, leased_at)
SELECT id, queue, priority, visible_at, state = 'invisible', attempts, last_error, leased_at
FROM messages_v1 WHERE state IN ('pending', 'invisible');

INSERT INTO leases (token, queue, leased_at, expires_at, exclusive, ids, attempts, expires, errors)
SELECT lease_token, queue, min(leased_at), min(lease_expires_at), bool_or(exclusivity_key IS NOT NULL),
       array_agg(id ORDER BY id), array_agg(attempts ORDER BY id), array_agg(lease_expires_at ORDER BY id),
       array_agg(last_error ORDER BY id)
FROM messages_v1 WHERE state = 'running'
GROUP BY lease_token, queue;

INSERT INTO finished (queue, state, finished_at, ids, attempts, leased, errors)
SELECT queue, state, finished_at, array_agg(id ORDER BY id), array_agg(attempts ORDER BY id),
       array_agg(leased_at ORDER BY id), array_agg(last_error ORDER BY id)
FROM messages_v1 WHERE state IN ('completed', 'canceled', 'errored')
GROUP BY queue, state, finished_at;

DROP TABLE messages_v1;

-- One row per message with its current state, for reads that are not on the hot path (get, idempotency).
CREATE VIEW message_view AS
SELECT m.id, m.queue, s.state, m.priority, m.payload, m.metadata, m.idempotency_key, m.exclusivity_key,
       s.attempts, m.max_attempts, s.lease_expires_at, s.visible_at, m.created_at, s.leased_at, s.finished_at,
       s.last_error
FROM messages m
CROSS JOIN LATERAL (
  SELECT CASE WHEN r.delayed THEN 'invisible' ELSE 'pending' END AS state, r.attempts,
         NULL::bigint AS lease_expires_at, r.visible_at, r.leased_at, NULL::bigint AS finished_at,
         r.last_error
  FROM ready r WHERE r.id = m.id
  UNION ALL
  SELECT 'running', u.attempts, u.expires, m.visible_at, l.leased_at, NULL, u.error
  FROM leases l, unnest(l.ids, l.attempts, l.expires, l.errors) AS u(id, attempts, expires, error)
  WHERE l.queue = m.queue AND l.ids @> ARRAY[m.id] AND u.id = m.id
  UNION ALL
  SELECT f.state, u.attempts, NULL, m.visible_at, u.leased, f.finished_at, u.error
  FROM finished f, unnest(f.ids, f.attempts, f.leased, f.errors) AS u(id, attempts, leased, error)
  WHERE f.ids @> ARRAY[m.id] AND u.id = m.id
  LIMIT 1
) s;
