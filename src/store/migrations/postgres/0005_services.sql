-- Deployed services as data (SPEC §10, §11): who owns each one, what it declares, and which services it
-- calls, so the platform can answer "who owns this" and "what depends on this" with a query. Written on every
-- deploy; `definition` is the deployed description as JSON (operations with their schemas and workflow
-- versions, functions with their versions).

CREATE TABLE services (
  name           text   PRIMARY KEY,
  owner_team     text   NOT NULL,
  owner_contact  text,
  description    text,
  secrets        text   NOT NULL,
  definition     text   NOT NULL,
  deployed_at    bigint NOT NULL
);

CREATE INDEX services_owner ON services (owner_team);

-- One row per declared call: the edges of the service graph, walked backwards to find every caller.
CREATE TABLE service_calls (
  caller  text NOT NULL REFERENCES services (name) ON DELETE CASCADE,
  callee  text NOT NULL,
  PRIMARY KEY (caller, callee)
);

CREATE INDEX service_calls_callee ON service_calls (callee);
