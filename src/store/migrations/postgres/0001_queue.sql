-- Durable priority queue (SPEC §5). Times are epoch milliseconds from the nodes' clocks.

CREATE TABLE queues (
  name            text PRIMARY KEY,
  lease_ms        integer NOT NULL CHECK (lease_ms > 0),
  delay_ms        integer NOT NULL CHECK (delay_ms >= 0),
  max_attempts    integer NOT NULL CHECK (max_attempts > 0),
  retention_ms    bigint  NOT NULL CHECK (retention_ms >= 0),
  enqueue_paused  boolean NOT NULL DEFAULT false,
  dequeue_paused  boolean NOT NULL DEFAULT false,
  exclusive       boolean NOT NULL DEFAULT false,
  created_at      bigint  NOT NULL,
  updated_at      bigint  NOT NULL
);

CREATE TABLE messages (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  queue            text    NOT NULL,
  state            text    NOT NULL
                   CHECK (state IN ('invisible', 'pending', 'running', 'completed', 'canceled', 'errored')),
  priority         bigint  NOT NULL,
  payload          text    NOT NULL,
  metadata         jsonb,
  idempotency_key  text,
  exclusivity_key  text,
  attempts         integer NOT NULL DEFAULT 0,
  max_attempts     integer NOT NULL,
  lease_token      text,
  lease_expires_at bigint,
  visible_at       bigint  NOT NULL,
  created_at       bigint  NOT NULL,
  leased_at        bigint,
  finished_at      bigint,
  last_error       text
);

-- Each partial index serves exactly one access path, so a backlog in one state never slows another.
CREATE INDEX messages_pending   ON messages (queue, priority, id)       WHERE state = 'pending';
CREATE INDEX messages_invisible ON messages (queue, visible_at)         WHERE state = 'invisible';
CREATE INDEX messages_running   ON messages (queue, lease_expires_at)   WHERE state = 'running';
CREATE INDEX messages_finished  ON messages (queue, finished_at)        WHERE state IN ('completed', 'canceled', 'errored');
CREATE UNIQUE INDEX messages_idempotency ON messages (queue, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- One row per leased exclusivity value: the primary key is what makes "one lease per value" hold
-- across concurrent consumers (a second claimant conflicts instead of racing on a stale snapshot).
CREATE TABLE exclusive_leases (
  queue       text   NOT NULL,
  key         text   NOT NULL,
  message_id  bigint NOT NULL,
  PRIMARY KEY (queue, key)
);
