import type { ExecutionFilter } from '../store.js';
import { likeEscape, priorityClassSql } from '../rows.js';
/**
 * Every SQL statement the PostgreSQL store runs, by name. Migration 0002 explains the tables: a message's
 * state is which of ready / leases / finished holds it. Tables resolve through the connection's search_path
 * (one schema per installation or test). Hot statements run as named prepared statements.
 */

/** Metadata filter on a ready row `r`, read from its message body. */
const FILTER = (p: string): string =>
  `(${p}::jsonb IS NULL OR EXISTS (SELECT 1 FROM messages m WHERE m.id = r.id AND m.metadata @> ${p}::jsonb))`;

/**
 * Deletes the ready rows `cte` locked (by ctid: the row lock keeps it stable, and a TID scan is cheaper than
 * the primary key) and records them as one lease row; `taken` is what was leased.
 */
const TAKE = (
  cte: string,
  queue: string,
  now: string,
  token: string,
  expiry: string,
  exclusive: string,
): string => `
    taken AS (
      DELETE FROM ready r WHERE r.ctid = ANY(ARRAY(SELECT ctid FROM ${cte}))
      RETURNING r.id, r.priority, r.attempts + 1 AS attempts, r.last_error, ${expiry} AS expires),
    lease AS (
      INSERT INTO leases (token, queue, leased_at, expires_at, exclusive, ids, attempts, expires, errors)
      SELECT ${token}, ${queue}, ${now}::bigint, min(expires), ${exclusive}, array_agg(id ORDER BY id),
             array_agg(attempts ORDER BY id), array_agg(expires ORDER BY id), array_agg(last_error ORDER BY id)
      FROM taken HAVING count(*) > 0)`;

/** What a consumer needs of each leased message: the taken row `t` and its body `m`. */
const LEASED_COLUMNS = `t.id, t.priority, t.attempts, t.last_error, t.expires AS lease_expires_at, m.payload,
      m.metadata, m.idempotency_key, m.exclusivity_key, m.max_attempts, m.visible_at, m.created_at`;

/**
 * The lease refs of a call (`input`: ids, the distinct tokens, and each id's token as a 1-based slot in
 * them, so a batch sends each token once) and the lease rows they name, locked in token order (`held`).
 */
const HELD_BY_REFS = (extra = '', names = ''): string => `
    input AS (
      SELECT x.id, t.token${names.replaceAll(', ', ', x.')}
      FROM unnest($1::bigint[], $3::integer[]${extra}) AS x(id, slot${names})
      JOIN unnest($2::text[]) WITH ORDINALITY AS t(token, n) ON t.n = x.slot),
    held AS (SELECT * FROM leases WHERE token = ANY($2::text[]) ORDER BY token FOR UPDATE)`;

/** One row per member of the `held` leases; `hit` marks the members the statement acts on. */
const MEMBERS = (held: string, hit: string, join = '', extra = ''): string => `
    members AS (
      SELECT h.token, h.queue, h.exclusive, h.leased_at, u.id, u.attempts, u.expires, u.error, (${hit}) AS hit${extra}
      FROM ${held} h CROSS JOIN LATERAL unnest(h.ids, h.attempts, h.expires, h.errors) AS u(id, attempts, expires, error)
      ${join})`;

/** Leases keep their members that were not hit; a lease with none left is deleted. */
const REWRITE_LEASES = `
    kept AS (
      UPDATE leases l SET ids = k.ids, attempts = k.attempts, expires = k.expires, errors = k.errors,
        expires_at = k.expires_at
      FROM (SELECT token, array_agg(id ORDER BY id) FILTER (WHERE NOT hit) AS ids,
                   array_agg(attempts ORDER BY id) FILTER (WHERE NOT hit) AS attempts,
                   array_agg(expires ORDER BY id) FILTER (WHERE NOT hit) AS expires,
                   array_agg(error ORDER BY id) FILTER (WHERE NOT hit) AS errors,
                   min(expires) FILTER (WHERE NOT hit) AS expires_at
            FROM members GROUP BY token HAVING bool_or(hit) AND NOT bool_and(hit)) k
      WHERE l.token = k.token),
    gone AS (DELETE FROM leases WHERE token IN (SELECT token FROM members GROUP BY token HAVING bool_and(hit)))`;

/** Records the rows of `source` as finished in `state`, one finished row per queue. */
const FINISH = (state: string, source: string, now: string, error: string): string => `
    finish AS (
      INSERT INTO finished (queue, state, finished_at, ids, attempts, leased, errors)
      SELECT queue, '${state}', ${now}::bigint, array_agg(id ORDER BY id), array_agg(attempts ORDER BY id),
             array_agg(leased_at ORDER BY id), array_agg(${error} ORDER BY id)
      FROM ${source} GROUP BY queue)`;

/** Frees the exclusivity claims of the leased messages in `cte` that a statement moved out of running. */
const FREE_CLAIMS = (cte: string): string => `
  freed AS (DELETE FROM exclusive_leases e USING ${cte} x WHERE x.exclusive AND e.message_id = x.id)`;

/** NOTIFY each queue that has work again; listeners on every node wake their consumers. */
const WAKE = (cte: string, channelParam: string, where = 'true'): string => `
  woken AS (SELECT pg_notify(${channelParam}, q) FROM (SELECT DISTINCT queue AS q FROM ${cte} WHERE ${where}) d)`;

export const pgQueries = {
  createMigrationsTable: `
    CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at bigint NOT NULL)`,
  appliedMigrations: `SELECT version, checksum FROM schema_migrations`,
  recordMigration: `INSERT INTO schema_migrations VALUES ($1, $2, $3, $4)`,
  schemaVersion: `SELECT coalesce(max(version), 0) AS v FROM schema_migrations`,

  insertQueues: `
    INSERT INTO queues (name, lease_ms, delay_ms, max_attempts, retention_ms, enqueue_paused, dequeue_paused,
                        exclusive, created_at, updated_at)
    SELECT n, $2::integer, $3::integer, $4::integer, $5::bigint, $6::boolean, $7::boolean, x, $8::bigint, $8::bigint FROM unnest($1::text[], $9::boolean[]) AS u(n, x)
    ORDER BY n
    ON CONFLICT (name) DO NOTHING`,
  updateQueue: `
    UPDATE queues SET lease_ms = $2, delay_ms = $3, max_attempts = $4, retention_ms = $5, enqueue_paused = $6,
      dequeue_paused = $7, exclusive = $8, updated_at = $9
    WHERE name = $1 RETURNING *`,
  getQueueForUpdate: `SELECT * FROM queues WHERE name = $1 FOR UPDATE`,
  getQueue: `SELECT * FROM queues WHERE name = $1`,
  listQueues: `SELECT * FROM queues ORDER BY name`,

  /**
   * All-or-nothing batch insert. `refused` names every queue that blocks the batch (paused, not
   * exclusive, missing); when it has rows nothing is inserted. Idempotency conflicts are skipped here and
   * looked up afterwards. Rows come back in id order, which is input order.
   */
  enqueue: `
    WITH input AS (
      SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::integer[], $5::text[], $6::jsonb[],
                           $7::text[], $8::integer[], $9::integer[])
        AS x(queue, payload, priority, delay_ms, idempotency_key, metadata, exclusivity_key, max_attempts, ord)
    ),
    cfg AS (SELECT * FROM queues WHERE name IN (SELECT DISTINCT queue FROM input)),
    refused AS (
      SELECT name AS queue, 'paused' AS why FROM cfg WHERE enqueue_paused
      UNION ALL
      SELECT DISTINCT x.queue, 'not_exclusive' FROM input x JOIN cfg ON cfg.name = x.queue
      WHERE x.exclusivity_key IS NOT NULL AND NOT cfg.exclusive
      UNION ALL
      SELECT DISTINCT x.queue, 'missing' FROM input x WHERE NOT EXISTS (SELECT 1 FROM cfg WHERE cfg.name = x.queue)
    ),
    ins AS (
      INSERT INTO messages (queue, priority, payload, metadata, idempotency_key, exclusivity_key, max_attempts,
                            visible_at, created_at)
      SELECT x.queue, x.priority, x.payload, x.metadata, x.idempotency_key, x.exclusivity_key,
             coalesce(x.max_attempts, cfg.max_attempts), $10::bigint + coalesce(x.delay_ms, cfg.delay_ms), $10::bigint
      FROM input x JOIN cfg ON cfg.name = x.queue
      WHERE NOT EXISTS (SELECT 1 FROM refused)
      ORDER BY x.ord
      ON CONFLICT (queue, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
      RETURNING id, queue, priority, visible_at, idempotency_key
    ),
    queued AS (
      INSERT INTO ready (id, queue, priority, visible_at, delayed)
      SELECT id, queue, priority, visible_at, visible_at > $10::bigint FROM ins),
    ${WAKE('ins', '$11')}
    SELECT (SELECT json_agg(json_build_object('queue', queue, 'why', why)) FROM refused) AS refused,
           (SELECT count(*) FROM woken) AS woken,
           coalesce((SELECT array_agg(id ORDER BY id) FROM ins), '{}') AS ids,
           coalesce((SELECT array_agg(CASE WHEN visible_at > $10::bigint THEN 'invisible' ELSE 'pending' END
                                      ORDER BY id) FROM ins), '{}') AS states,
           coalesce((SELECT array_agg(queue || chr(31) || idempotency_key ORDER BY id) FROM ins), '{}') AS keys`,
  findByIdempotencyKeys: `
    SELECT v.id, v.state, v.queue, v.idempotency_key FROM message_view v
    JOIN unnest($1::text[], $2::text[]) AS k(queue, key) ON v.queue = k.queue AND v.idempotency_key = k.key`,

  /**
   * Non-exclusive dequeue in one statement: the best of pending and due delayed messages, each arm read from
   * its own partial index and locked with SKIP LOCKED so consumers never wait on each other; the ready rows
   * are deleted and one lease row records the batch. With $7 set, nothing is leased while an expired lease
   * waits on this queue (the caller settles it first, so redelivery keeps priority order); the first row
   * always comes back and says so in \`expired\`.
   */
  dequeue: `
    WITH cfg AS (SELECT lease_ms FROM queues WHERE name = $1 AND NOT dequeue_paused AND NOT exclusive),
    expired AS (SELECT $7::boolean AND EXISTS (
      SELECT 1 FROM leases WHERE queue = $1 AND expires_at <= $3::bigint) AS e),
    go AS (SELECT 1 FROM cfg WHERE NOT (SELECT e FROM expired)),
    a AS (
      SELECT r.ctid, r.id, r.priority FROM ready r
      WHERE r.queue = $1 AND NOT r.delayed AND EXISTS (SELECT 1 FROM go) AND ${FILTER('$5')}
      ORDER BY r.priority, r.id LIMIT $2 FOR UPDATE SKIP LOCKED),
    b AS (
      SELECT r.ctid, r.id, r.priority FROM ready r
      WHERE r.queue = $1 AND r.delayed AND r.visible_at <= $3::bigint AND EXISTS (SELECT 1 FROM go) AND ${FILTER('$5')}
      ORDER BY r.visible_at LIMIT $2 FOR UPDATE SKIP LOCKED),
    cand AS (
      SELECT ctid FROM (SELECT * FROM a UNION ALL SELECT * FROM b) u ORDER BY priority, id LIMIT $2),
    ${TAKE('cand', '$1', '$3', '$4', `$3::bigint + coalesce($6::bigint, (SELECT lease_ms FROM cfg))`, 'false')}
    SELECT x.e AS expired, ${LEASED_COLUMNS}
    FROM expired x LEFT JOIN (taken t JOIN messages m ON m.id = t.id) ON true
    ORDER BY t.priority, t.id`,

  /**
   * Expired leases and due delayed messages of one queue, settled in one commit: expired members go back to
   * pending while attempts remain, otherwise to errored; members whose lease was extended stay leased.
   */
  settleQueue: `
    WITH held AS (
      SELECT * FROM leases WHERE queue = $1 AND expires_at <= $2::bigint
      ORDER BY expires_at LIMIT $3 FOR UPDATE SKIP LOCKED),
    ${MEMBERS('held', 'u.expires <= $2::bigint')},
    ${REWRITE_LEASES},
    done AS (
      SELECT mb.*, m.max_attempts, m.priority, 'lease expired after attempt ' || mb.attempts AS why
      FROM members mb JOIN messages m ON m.id = mb.id WHERE mb.hit),
    ${FINISH('errored', `done WHERE attempts >= max_attempts`, '$2', 'why')},
    back AS (
      INSERT INTO ready (id, queue, priority, visible_at, delayed, attempts, last_error, leased_at)
      SELECT id, queue, priority, $2::bigint, false, attempts, why, leased_at FROM done WHERE attempts < max_attempts),
    ${FREE_CLAIMS('done')},
    promoted AS (
      UPDATE ready SET delayed = false
      WHERE id = ANY(ARRAY(
        SELECT id FROM ready WHERE queue = $1 AND delayed AND visible_at <= $2::bigint
        ORDER BY visible_at LIMIT $3 FOR UPDATE SKIP LOCKED))
      RETURNING id, queue),
    woke AS (SELECT queue FROM done WHERE attempts < max_attempts OR exclusive UNION ALL SELECT queue FROM promoted),
    ${WAKE('woke', '$4')}
    SELECT (SELECT count(*) FROM done WHERE attempts < max_attempts) AS requeued,
           (SELECT count(*) FROM done WHERE attempts >= max_attempts) AS errored,
           (SELECT count(*) FROM promoted) AS promoted,
           (SELECT count(*) FROM woken) AS woken`,
  exclusiveCandidates: `
    SELECT r.id, r.priority, m.exclusivity_key FROM ready r JOIN messages m ON m.id = r.id
    WHERE r.queue = $1 AND NOT r.delayed AND ($3::jsonb IS NULL OR m.metadata @> $3::jsonb)
      AND (r.priority, r.id) > ($4::bigint, $5::bigint)
      AND (m.exclusivity_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM exclusive_leases e WHERE e.queue = $1 AND e.key = m.exclusivity_key))
    ORDER BY r.priority, r.id LIMIT $2`,
  /** Sorted inserts: two consumers claiming overlapping keys wait in the same order, so never deadlock. */
  claimKeys: `
    INSERT INTO exclusive_leases (queue, key, message_id)
    SELECT $1, k, id FROM unnest($2::text[], $3::bigint[]) AS u(k, id) ORDER BY k
    ON CONFLICT DO NOTHING
    RETURNING message_id`,
  leaseIds: `
    WITH cand AS (
      SELECT ctid FROM ready WHERE id = ANY($2::bigint[]) AND NOT delayed ORDER BY id FOR UPDATE SKIP LOCKED),
    ${TAKE('cand', '$1', '$4', '$3', '$5::bigint', 'true')}
    SELECT false AS expired, ${LEASED_COLUMNS}
    FROM taken t JOIN messages m ON m.id = t.id
    ORDER BY t.priority, t.id`,
  unclaimKeys: `DELETE FROM exclusive_leases WHERE queue = $1 AND message_id = ANY($2::bigint[])`,
  queueLease: `SELECT lease_ms, dequeue_paused FROM queues WHERE name = $1`,

  complete: `
    WITH ${HELD_BY_REFS()},
    ${MEMBERS('held', 'i.id IS NOT NULL', 'LEFT JOIN input i ON i.id = u.id AND i.token = h.token')},
    ${REWRITE_LEASES},
    done AS (SELECT * FROM members WHERE hit),
    ${FINISH('completed', 'done', '$4', 'error')},
    ${FREE_CLAIMS('done')},
    ${WAKE('done', '$5', 'exclusive')}
    SELECT id, (SELECT count(*) FROM woken) AS woken FROM done`,
  fail: `
    WITH ${HELD_BY_REFS(', $4::text[], $5::bigint[], $8::boolean[]', ', error, delay, final')},
    ${MEMBERS('held', 'i.id IS NOT NULL', 'LEFT JOIN input i ON i.id = u.id AND i.token = h.token', ', i.error AS why, i.delay, i.final')},
    ${REWRITE_LEASES},
    done AS (
      SELECT mb.*, m.max_attempts, m.priority,
             CASE WHEN mb.attempts >= m.max_attempts OR mb.final THEN 'errored'
                  WHEN mb.delay > 0 THEN 'invisible' ELSE 'pending' END AS state
      FROM members mb JOIN messages m ON m.id = mb.id WHERE mb.hit),
    ${FINISH('errored', `done WHERE state = 'errored'`, '$6', 'why')},
    back AS (
      INSERT INTO ready (id, queue, priority, visible_at, delayed, attempts, last_error, leased_at)
      SELECT id, queue, priority, $6::bigint + delay, delay > 0, attempts, why, leased_at FROM done WHERE state <> 'errored'),
    ${FREE_CLAIMS('done')},
    ${WAKE('done', '$7', "state <> 'errored' OR exclusive")}
    SELECT id, state, (SELECT count(*) FROM woken) AS woken FROM done`,
  release: `
    WITH ${HELD_BY_REFS()},
    ${MEMBERS('held', 'i.id IS NOT NULL', 'LEFT JOIN input i ON i.id = u.id AND i.token = h.token')},
    ${REWRITE_LEASES},
    done AS (SELECT mb.*, m.priority FROM members mb JOIN messages m ON m.id = mb.id WHERE mb.hit),
    back AS (
      INSERT INTO ready (id, queue, priority, visible_at, delayed, attempts, last_error, leased_at)
      SELECT id, queue, priority, $4::bigint + $5::bigint, $5::bigint > 0, attempts - 1, error, leased_at FROM done),
    ${FREE_CLAIMS('done')},
    ${WAKE('done', '$6')}
    SELECT id, (SELECT count(*) FROM woken) AS woken FROM done`,
  extend: `
    WITH ${HELD_BY_REFS()},
    ${MEMBERS('held', 'i.id IS NOT NULL', 'LEFT JOIN input i ON i.id = u.id AND i.token = h.token')},
    moved AS (
      UPDATE leases l SET expires = k.expires, expires_at = k.expires_at
      FROM (SELECT token, array_agg(CASE WHEN hit THEN $4::bigint ELSE expires END ORDER BY id) AS expires,
                   min(CASE WHEN hit THEN $4::bigint ELSE expires END) AS expires_at
            FROM members GROUP BY token HAVING bool_or(hit)) k
      WHERE l.token = k.token)
    SELECT id, $4::bigint AS lease_expires_at FROM members WHERE hit`,
  cancel: `
    WITH input AS (SELECT DISTINCT unnest($1::bigint[]) AS id),
    unqueued AS (
      DELETE FROM ready r WHERE r.id IN (SELECT id FROM input)
      RETURNING r.id, r.queue, r.attempts, r.leased_at, r.last_error AS error, false AS exclusive),
    held AS (SELECT * FROM leases WHERE ids && $1::bigint[] ORDER BY token FOR UPDATE),
    ${MEMBERS('held', 'u.id IN (SELECT id FROM input)')},
    ${REWRITE_LEASES},
    done AS (
      SELECT id, queue, attempts, leased_at, error, exclusive FROM unqueued
      UNION ALL SELECT id, queue, attempts, leased_at, error, exclusive FROM members WHERE hit),
    ${FINISH('canceled', 'done', '$2', 'error')},
    ${FREE_CLAIMS('done')},
    ${WAKE('done', '$3', 'exclusive')}
    SELECT id, (SELECT count(*) FROM woken) AS woken FROM done`,
  get: `SELECT * FROM message_view WHERE id = $1`,
  /** Ready messages by priority class (the offset of their priority from their enqueue time). */
  pendingByClass: `
    SELECT ${priorityClassSql('r.priority', 'm.created_at')} AS class, count(*) AS n, min(r.visible_at) AS oldest
    FROM ready r JOIN messages m ON m.id = r.id WHERE r.queue = $1 AND NOT r.delayed GROUP BY 1`,
  counts: `
    SELECT CASE WHEN delayed THEN 'invisible' ELSE 'pending' END AS state, count(*) AS n
    FROM ready WHERE queue = $1 GROUP BY 1
    UNION ALL SELECT 'running', sum(cardinality(ids)) FROM leases WHERE queue = $1
    UNION ALL SELECT state, sum(cardinality(ids)) FROM finished WHERE queue = $1 GROUP BY state`,
  /** Whole finished rows, oldest first, up to about $3 messages (always at least one row). */
  gcQueue: `
    WITH pick AS (
      SELECT id FROM (
        SELECT id, sum(cardinality(ids)) OVER (ORDER BY finished_at, id) - cardinality(ids) AS before
        FROM finished WHERE queue = $1 AND finished_at <= $2::bigint ORDER BY finished_at, id LIMIT $3) x
      WHERE before < $3),
    gone AS (DELETE FROM finished WHERE id IN (SELECT id FROM pick) RETURNING ids),
    bodies AS (DELETE FROM messages WHERE id IN (SELECT unnest(ids) FROM gone) RETURNING 1)
    SELECT count(*) AS n FROM bodies`,
  nextDueAt: `
    SELECT least(
      (SELECT min(visible_at) FROM ready WHERE queue = $1 AND delayed),
      (SELECT min(expires_at) FROM leases WHERE queue = $1)) AS t`,
} as const;

/** The workflow store's statements (executions, their trace, applied signals). */
export const pgWorkflowQueries = {
  signalApplied: `SELECT 1 FROM applied_signals WHERE execution_id = $1 AND message_id = $2`,
  getExecutions: `SELECT * FROM executions WHERE id = ANY($1::text[])`,
  countByStatus: `SELECT status, count(*)::int AS n FROM executions GROUP BY status`,
  openOnOtherVersions: `
    SELECT id, version FROM executions WHERE workflow = $1 AND status = 'running' AND version <> $2`,
  trace: `SELECT * FROM execution_events WHERE execution_id = $1 ORDER BY id`,
  renewOwnership: `UPDATE executions SET owner_until = $3 WHERE id = ANY($1::text[]) AND owner = $2`,
  // Rows another node is moving right now are skipped, not waited for: each row moves exactly once.
  indexSearch: `
    WITH moved AS (
      DELETE FROM execution_search_backlog
      WHERE ctid = ANY(ARRAY(SELECT ctid FROM execution_search_backlog LIMIT $1 FOR UPDATE SKIP LOCKED))
      RETURNING id, body),
    ins AS (INSERT INTO execution_search (id, body) SELECT id, body FROM moved RETURNING 1)
    SELECT count(*)::int AS n FROM ins`,
  lapsedOwnership: `
    SELECT id FROM executions
    WHERE owner IS NOT NULL AND owner_until < $1 AND status = 'running'
    ORDER BY owner_until LIMIT $2`,
} as const;

/** Which parts a group of workflow steps needs; each combination is its own prepared statement. */
export interface StepParts {
  insert: boolean;
  update: boolean;
  finished: boolean;
  trace: boolean;
  signals: boolean;
  search: boolean;
  outbox: boolean;
}

const stepStatements = new Map<string, string>();

/**
 * A group of workflow steps as one statement, so one round trip and one commit (SPEC §2, the outbox): the
 * executions inserted or moved past their sequence check, their trace, applied signals, and the messages
 * they send. Only the parts a group needs are in its statement, since each part costs executor time even
 * when empty. If an execution fails its check, cosmos_steps_written raises and nothing is written.
 * Parameters, in order: the 14 execution arrays; trace (4) and signals (2) when present; the outbox (7)
 * with now and the channel; the expected count.
 */
export function commitStepsSql(parts: StepParts): { name: string; text: string } {
  const key = Object.values(parts)
    .map((b) => (b ? 1 : 0))
    .join('');
  let text = stepStatements.get(key);
  if (text === undefined) {
    text = buildCommitSteps(parts);
    stepStatements.set(key, text);
  }
  return { name: `wf_commit_${key}`, text };
}

function buildCommitSteps(p: StepParts): string {
  let n = 0;
  const next = (type: string): string => `$${++n}::${type}`;
  // Each group arrives as one JSON array of objects: JSON.stringify is native, while pg's array literals
  // escape every quote of every document character by character in JavaScript (a tenth of the engine's
  // time under load).
  const ctes = [
    `ex_in AS (
      SELECT * FROM json_to_recordset(${next('json')})
        AS x(id text, workflow text, version text, status text, priority bigint, parent_id text, seq integer,
             doc text, created_at bigint, updated_at bigint, finished_at bigint, owner text, owner_until bigint,
             keep_owner boolean))`,
  ];
  if (p.insert)
    ctes.push(`ins_x AS (
      INSERT INTO executions (id, workflow, version, status, priority, parent_id, seq, doc, created_at,
                              updated_at, finished_at, owner, owner_until)
      SELECT id, workflow, version, status, priority, parent_id, seq, doc, created_at, updated_at, finished_at,
             owner, owner_until
      FROM ex_in WHERE seq = 1 ON CONFLICT (id) DO NOTHING RETURNING id)`);
  if (p.update)
    ctes.push(`upd_x AS (
      UPDATE executions e SET version = x.version, status = x.status, priority = x.priority, seq = x.seq,
        doc = x.doc, updated_at = x.updated_at, finished_at = x.finished_at,
        owner = CASE WHEN x.keep_owner AND e.owner IS NOT NULL THEN e.owner ELSE x.owner END,
        owner_until = CASE WHEN x.keep_owner AND e.owner IS NOT NULL THEN e.owner_until ELSE x.owner_until END
      FROM ex_in x WHERE x.seq > 1 AND e.id = x.id AND e.seq = x.seq - 1
      RETURNING e.id)`);
  if (p.trace)
    ctes.push(`tr AS (
      INSERT INTO execution_events (execution_id, seq, at, events)
      SELECT * FROM json_to_recordset(${next('json')}) AS t(id text, seq integer, at bigint, events text))`);
  if (p.signals)
    ctes.push(`sig AS (
      INSERT INTO applied_signals (execution_id, message_id)
      SELECT * FROM json_to_recordset(${next('json')}) AS s(id text, message bigint) ON CONFLICT DO NOTHING)`);
  if (p.search)
    ctes.push(`srch AS (
      INSERT INTO execution_search_backlog (id, body)
      SELECT * FROM json_to_recordset(${next('json')}) AS s(id text, body text))`);
  if (p.finished)
    ctes.push(`unsig AS (
      DELETE FROM applied_signals WHERE execution_id IN (SELECT id FROM ex_in WHERE finished_at IS NOT NULL))`);
  if (p.outbox) {
    const m = next('json');
    const now = next('bigint');
    ctes.push(`m_in AS (
      SELECT *, row_number() OVER () AS ord
      FROM json_to_recordset(${m})
        AS m(queue text, payload text, priority bigint, delay_ms integer, ikey text, xkey text, max_attempts integer))`);
    ctes.push(`ins_m AS (
      INSERT INTO messages (queue, priority, payload, idempotency_key, exclusivity_key, max_attempts, visible_at,
                            created_at)
      SELECT m.queue, m.priority, m.payload, m.ikey, m.xkey, coalesce(m.max_attempts, q.max_attempts),
             ${now} + coalesce(m.delay_ms, q.delay_ms), ${now}
      FROM m_in m JOIN queues q ON q.name = m.queue ORDER BY m.ord
      ON CONFLICT (queue, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
      RETURNING id, queue, priority, visible_at)`);
    ctes.push(`queued AS (
      INSERT INTO ready (id, queue, priority, visible_at, delayed)
      SELECT id, queue, priority, visible_at, visible_at > ${now} FROM ins_m)`);
    ctes.push(WAKE('ins_m', next('text')).trim());
  }
  const written = [
    ...(p.insert ? ['(SELECT count(*) FROM ins_x)'] : []),
    ...(p.update ? ['(SELECT count(*) FROM upd_x)'] : []),
  ];
  return `
    WITH ${ctes.join(',\n    ')}
    SELECT cosmos_steps_written(${written.join(' + ') || '0'}, ${next('bigint')}) AS written${
      p.outbox ? ', (SELECT count(*) FROM woken) AS woken' : ''
    }`;
}

/** The service store's statements (deployed services and their declared calls). */
export const pgServiceQueries = {
  upsertService: `
    INSERT INTO services (name, owner_team, owner_contact, description, secrets, definition, deployed_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (name) DO UPDATE SET owner_team = excluded.owner_team, owner_contact = excluded.owner_contact,
      description = excluded.description, secrets = excluded.secrets, definition = excluded.definition,
      deployed_at = excluded.deployed_at`,
  // Two statements: a delete in a CTE is not visible to the insert beside it, so a redeploy of the same calls
  // (every node deploys its services on start) would collide with the rows it is replacing.
  dropCalls: `DELETE FROM service_calls WHERE caller = $1`,
  insertCalls: `
    INSERT INTO service_calls (caller, callee) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`,
  listServices: `
    SELECT s.*, (SELECT json_agg(callee)::text FROM service_calls c WHERE c.caller = s.name) AS calls
    FROM services s ORDER BY s.name`,
  callersOf: `
    WITH RECURSIVE up(name, depth) AS (
      SELECT caller, 1 FROM service_calls WHERE callee = $1
      UNION
      SELECT c.caller, up.depth + 1 FROM service_calls c JOIN up ON c.callee = up.name WHERE up.depth < 64
    )
    SELECT name, min(depth)::int AS depth FROM up GROUP BY name ORDER BY depth, name`,
} as const;

/** The node registry's statements (distributed mode; one row per running node). */
export const pgClusterQueries = {
  beat: `
    INSERT INTO nodes (id, name, roles, pools, slots, host, pid, version, url, status, heartbeat_ms, duties,
      started_at, heartbeat_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
    ON CONFLICT (id) DO UPDATE SET status = excluded.status, url = excluded.url, duties = excluded.duties,
      heartbeat_ms = excluded.heartbeat_ms, heartbeat_at = excluded.heartbeat_at`,
  listNodes: `SELECT * FROM nodes ORDER BY started_at, id`,
  pruneNodes: `DELETE FROM nodes WHERE heartbeat_at < $1`,
  /** Session-level, so the lock dies with the holder's connection: a dead node's duties move on by themselves. */
  tryDuty: `SELECT pg_try_advisory_lock(hashtext($1)) AS held`,
  releaseDuty: `SELECT pg_advisory_unlock(hashtext($1)) AS released`,
} as const;

/**
 * The executions list with only the filters given, newest first. Sent unnamed, so PostgreSQL plans it with
 * its values (a catch-all `($1 IS NULL OR …)` statement gets a generic plan that scans the table).
 */
export function listExecutionsQuery(f: ExecutionFilter): { text: string; values: unknown[] } {
  const where: string[] = [];
  const values: unknown[] = [];
  const p = (v: unknown): string => `$${values.push(v)}`;
  if (f.workflow !== undefined) where.push(`workflow = ${p(f.workflow)}`);
  if (f.status !== undefined) where.push(`status = ${p(f.status)}`);
  if (f.parentId !== undefined) where.push(`parent_id = ${p(f.parentId)}`);
  if (f.before) where.push(`(created_at, id) < (${p(f.before.createdAt)}::bigint, ${p(f.before.id)}::text)`);
  if (f.service !== undefined) where.push(`workflow LIKE ${p(`${likeEscape(f.service)}.%`)} ESCAPE '\\'`);
  if (f.q !== undefined) where.push(`id IN (SELECT execution_search_ids(${p(`%${likeEscape(f.q)}%`)}))`);
  const text = `SELECT * FROM executions${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''}
    ORDER BY created_at DESC, id DESC LIMIT ${p(f.limit)}`;
  return { text, values };
}
