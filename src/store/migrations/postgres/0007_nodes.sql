-- The node registry (distributed mode): every running node writes its row on start and on each heartbeat, so
-- any node (and `cosmos nodes`, the UI) can see the fleet. Nothing else depends on a row: a node that dies
-- simply stops beating; its leases lapse on their own and its duties' advisory locks die with its session.
-- A node whose last beat is older than three heartbeat intervals is reported as lost.

CREATE TABLE nodes (
  id            text    PRIMARY KEY,
  name          text    NOT NULL,
  roles         text[]  NOT NULL,
  pools         text[]  NOT NULL,
  slots         integer NOT NULL,
  host          text    NOT NULL,
  pid           integer NOT NULL,
  version       text    NOT NULL,
  url           text,
  status        text    NOT NULL CHECK (status IN ('up', 'draining', 'stopped')),
  heartbeat_ms  integer NOT NULL,
  duties        text[]  NOT NULL,
  started_at    bigint  NOT NULL,
  heartbeat_at  bigint  NOT NULL
);

CREATE INDEX nodes_heartbeat ON nodes (heartbeat_at);
