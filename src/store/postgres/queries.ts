/**
 * Every SQL statement the PostgreSQL store runs, by name. Tables resolve through the connection's
 * search_path (one schema per installation or test). Hot statements run as named prepared statements.
 */

const FINISHED = `('completed', 'canceled', 'errored')`;

/** Frees the exclusivity claims of the messages a statement just moved out of `running`. */
const FREE_CLAIMS = (cte: string): string => `
  freed AS (
    DELETE FROM exclusive_leases e USING ${cte} x
    WHERE x.exclusivity_key IS NOT NULL AND e.queue = x.queue AND e.key = x.exclusivity_key AND e.message_id = x.id)`;

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
      INSERT INTO messages (queue, state, priority, payload, metadata, idempotency_key, exclusivity_key,
                            max_attempts, visible_at, created_at)
      SELECT x.queue,
             CASE WHEN coalesce(x.delay_ms, cfg.delay_ms) > 0 THEN 'invisible' ELSE 'pending' END,
             x.priority, x.payload, x.metadata, x.idempotency_key, x.exclusivity_key,
             coalesce(x.max_attempts, cfg.max_attempts), $10::bigint + coalesce(x.delay_ms, cfg.delay_ms), $10::bigint
      FROM input x JOIN cfg ON cfg.name = x.queue
      WHERE NOT EXISTS (SELECT 1 FROM refused)
      ORDER BY x.ord
      ON CONFLICT (queue, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
      RETURNING id, queue, state, idempotency_key
    ),
    ${WAKE('ins', '$11')}
    SELECT (SELECT json_agg(json_build_object('queue', queue, 'why', why)) FROM refused) AS refused,
           (SELECT count(*) FROM woken) AS woken,
           coalesce((SELECT array_agg(id ORDER BY id) FROM ins), '{}') AS ids,
           coalesce((SELECT array_agg(state ORDER BY id) FROM ins), '{}') AS states,
           coalesce((SELECT array_agg(queue || chr(31) || idempotency_key ORDER BY id) FROM ins), '{}') AS keys`,
  findByIdempotencyKeys: `
    SELECT m.id, m.state, m.queue, m.idempotency_key FROM messages m
    JOIN unnest($1::text[], $2::text[]) AS k(queue, key) ON m.queue = k.queue AND m.idempotency_key = k.key`,

  /**
   * Non-exclusive dequeue in one statement: the best of pending, due delayed and expired-with-attempts-left
   * messages, each arm read from its own partial index and locked with SKIP LOCKED so consumers never
   * wait on each other.
   */
  dequeue: `
    WITH cfg AS (SELECT lease_ms FROM queues WHERE name = $1 AND NOT dequeue_paused AND NOT exclusive),
    a AS (
      SELECT id, priority FROM messages
      WHERE queue = $1 AND state = 'pending' AND EXISTS (SELECT 1 FROM cfg)
        AND ($5::jsonb IS NULL OR metadata @> $5::jsonb)
      ORDER BY priority, id LIMIT $2 FOR UPDATE SKIP LOCKED),
    b AS (
      SELECT id, priority FROM messages
      WHERE queue = $1 AND state = 'invisible' AND visible_at <= $3::bigint AND EXISTS (SELECT 1 FROM cfg)
        AND ($5::jsonb IS NULL OR metadata @> $5::jsonb)
      ORDER BY visible_at LIMIT $2 FOR UPDATE SKIP LOCKED),
    c AS (
      SELECT id, priority FROM messages
      WHERE queue = $1 AND state = 'running' AND lease_expires_at <= $3 AND attempts < max_attempts
        AND EXISTS (SELECT 1 FROM cfg) AND ($5::jsonb IS NULL OR metadata @> $5::jsonb)
      ORDER BY lease_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED),
    cand AS (
      SELECT id FROM (SELECT * FROM a UNION ALL SELECT * FROM b UNION ALL SELECT * FROM c) u
      ORDER BY priority, id LIMIT $2)
    UPDATE messages m SET state = 'running', attempts = m.attempts + 1, lease_token = $4, leased_at = $3::bigint,
      lease_expires_at = $3::bigint + coalesce($6::bigint, (SELECT lease_ms FROM cfg)),
      last_error = CASE WHEN m.state = 'running' THEN 'lease expired after attempt ' || m.attempts
                        ELSE m.last_error END
    WHERE m.id = ANY(ARRAY(SELECT id FROM cand))
    RETURNING m.*`,

  /** Exclusive queues: expired leases and due delayed messages are settled first, in their own commit. */
  settleQueue: `
    WITH expired AS (
      UPDATE messages SET
        state = CASE WHEN attempts >= max_attempts THEN 'errored' ELSE 'pending' END,
        finished_at = CASE WHEN attempts >= max_attempts THEN $2::bigint END,
        last_error = 'lease expired after attempt ' || attempts,
        lease_token = NULL, lease_expires_at = NULL
      WHERE id = ANY(ARRAY(
        SELECT id FROM messages WHERE queue = $1 AND state = 'running' AND lease_expires_at <= $2
        ORDER BY lease_expires_at LIMIT $3 FOR UPDATE SKIP LOCKED))
      RETURNING id, queue, state, exclusivity_key),
    ${FREE_CLAIMS('expired')},
    promoted AS (
      UPDATE messages SET state = 'pending'
      WHERE id = ANY(ARRAY(
        SELECT id FROM messages WHERE queue = $1 AND state = 'invisible' AND visible_at <= $2
        ORDER BY visible_at LIMIT $3 FOR UPDATE SKIP LOCKED))
      RETURNING id, queue),
    back AS (SELECT queue FROM expired WHERE state = 'pending' UNION ALL SELECT queue FROM promoted),
    ${WAKE('back', '$4')}
    SELECT (SELECT count(*) FROM expired WHERE state = 'pending') AS requeued,
           (SELECT count(*) FROM expired WHERE state = 'errored') AS errored,
           (SELECT count(*) FROM promoted) AS promoted,
           (SELECT count(*) FROM woken) AS woken`,
  exclusiveCandidates: `
    SELECT id, priority, exclusivity_key FROM messages m
    WHERE queue = $1 AND state = 'pending' AND ($3::jsonb IS NULL OR metadata @> $3::jsonb)
      AND (priority, id) > ($4::bigint, $5::bigint)
      AND (exclusivity_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM exclusive_leases e WHERE e.queue = $1 AND e.key = m.exclusivity_key))
    ORDER BY priority, id LIMIT $2`,
  /** Sorted inserts: two consumers claiming overlapping keys wait in the same order, so never deadlock. */
  claimKeys: `
    INSERT INTO exclusive_leases (queue, key, message_id)
    SELECT $1, k, id FROM unnest($2::text[], $3::bigint[]) AS u(k, id) ORDER BY k
    ON CONFLICT DO NOTHING
    RETURNING message_id`,
  leaseIds: `
    UPDATE messages m SET state = 'running', attempts = m.attempts + 1, lease_token = $2, leased_at = $3::bigint,
      lease_expires_at = $4::bigint
    WHERE m.id = ANY(ARRAY(
      SELECT id FROM messages WHERE id = ANY($1::bigint[]) AND state = 'pending' ORDER BY id FOR UPDATE SKIP LOCKED))
    RETURNING m.*`,
  unclaimKeys: `DELETE FROM exclusive_leases WHERE queue = $1 AND message_id = ANY($2::bigint[])`,
  queueLease: `SELECT lease_ms, dequeue_paused FROM queues WHERE name = $1`,

  complete: `
    WITH done AS (
      UPDATE messages m SET state = 'completed', finished_at = $3::bigint, lease_token = NULL, lease_expires_at = NULL
      FROM unnest($1::bigint[], $2::text[]) AS l(id, token)
      WHERE m.id = l.id AND m.lease_token = l.token AND m.state = 'running'
      RETURNING m.id, m.queue, m.exclusivity_key),
    ${FREE_CLAIMS('done')},
    ${WAKE('done', '$4', 'exclusivity_key IS NOT NULL')}
    SELECT id, (SELECT count(*) FROM woken) AS woken FROM done`,
  fail: `
    WITH done AS (
      UPDATE messages m SET
        state = CASE WHEN m.attempts >= m.max_attempts THEN 'errored'
                     WHEN f.delay > 0 THEN 'invisible' ELSE 'pending' END,
        finished_at = CASE WHEN m.attempts >= m.max_attempts THEN $5::bigint END,
        visible_at = $5::bigint + f.delay, last_error = f.error, lease_token = NULL, lease_expires_at = NULL
      FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[]) AS f(id, token, error, delay)
      WHERE m.id = f.id AND m.lease_token = f.token AND m.state = 'running'
      RETURNING m.id, m.queue, m.state, m.exclusivity_key),
    ${FREE_CLAIMS('done')},
    ${WAKE('done', '$6', "state <> 'errored' OR exclusivity_key IS NOT NULL")}
    SELECT id, state, (SELECT count(*) FROM woken) AS woken FROM done`,
  release: `
    WITH done AS (
      UPDATE messages m SET state = CASE WHEN $4::bigint > 0 THEN 'invisible' ELSE 'pending' END,
        attempts = m.attempts - 1, visible_at = $3::bigint + $4::bigint, lease_token = NULL, lease_expires_at = NULL
      FROM unnest($1::bigint[], $2::text[]) AS l(id, token)
      WHERE m.id = l.id AND m.lease_token = l.token AND m.state = 'running'
      RETURNING m.id, m.queue, m.exclusivity_key),
    ${FREE_CLAIMS('done')},
    ${WAKE('done', '$5')}
    SELECT id, (SELECT count(*) FROM woken) AS woken FROM done`,
  extend: `
    UPDATE messages m SET lease_expires_at = $3::bigint
    FROM unnest($1::bigint[], $2::text[]) AS l(id, token)
    WHERE m.id = l.id AND m.lease_token = l.token AND m.state = 'running'
    RETURNING m.id, m.lease_expires_at`,
  cancel: `
    WITH done AS (
      UPDATE messages SET state = 'canceled', finished_at = $2::bigint, lease_token = NULL, lease_expires_at = NULL
      WHERE id = ANY($1::bigint[]) AND state IN ('invisible', 'pending', 'running')
      RETURNING id, queue, exclusivity_key),
    ${FREE_CLAIMS('done')},
    ${WAKE('done', '$3', 'exclusivity_key IS NOT NULL')}
    SELECT id, (SELECT count(*) FROM woken) AS woken FROM done`,
  get: `SELECT * FROM messages WHERE id = $1`,
  counts: `SELECT state, count(*) AS n FROM messages WHERE queue = $1 GROUP BY state`,
  gcQueue: `
    DELETE FROM messages WHERE id = ANY(ARRAY(
      SELECT id FROM messages WHERE queue = $1 AND state IN ${FINISHED} AND finished_at <= $2 LIMIT $3))`,
  nextDueAt: `
    SELECT least(
      (SELECT min(visible_at) FROM messages WHERE queue = $1 AND state = 'invisible'),
      (SELECT min(lease_expires_at) FROM messages WHERE queue = $1 AND state = 'running')) AS t`,
} as const;
