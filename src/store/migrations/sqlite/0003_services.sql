-- Deployed services as data (SPEC §10, §11): who owns each one, what it declares, and which services it
-- calls, so the platform can answer "who owns this" and "what depends on this" with a query. Written on every
-- deploy; `definition` is the deployed description as JSON (operations with their schemas and workflow
-- versions, functions with their versions).

CREATE TABLE services (
  name           TEXT    PRIMARY KEY,
  owner_team     TEXT    NOT NULL,
  owner_contact  TEXT,
  description    TEXT,
  secrets        TEXT    NOT NULL,
  definition     TEXT    NOT NULL,
  deployed_at    INTEGER NOT NULL
) STRICT;

CREATE INDEX services_owner ON services (owner_team);

-- One row per declared call: the edges of the service graph, walked backwards to find every caller.
CREATE TABLE service_calls (
  caller  TEXT NOT NULL REFERENCES services (name) ON DELETE CASCADE,
  callee  TEXT NOT NULL,
  PRIMARY KEY (caller, callee)
) STRICT;

CREATE INDEX service_calls_callee ON service_calls (callee);
