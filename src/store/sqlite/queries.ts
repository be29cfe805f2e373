import type { ExecutionFilter } from '../store.js';
import { likeEscape, priorityClassSql } from '../rows.js';
/** Every SQL statement the SQLite store runs, by name. Filters are appended by `metadataFilter`. */

const FINISHED = `('completed', 'canceled', 'errored')`;

export const sqliteQueries = {
  insertQueue: `
    INSERT INTO queues (name, lease_ms, delay_ms, max_attempts, retention_ms, enqueue_paused, dequeue_paused,
                        exclusive, created_at, updated_at)
    VALUES (@name, @leaseMs, @delayMs, @maxAttempts, @retentionMs, @enqueuePaused, @dequeuePaused,
            @exclusive, @now, @now)
    ON CONFLICT (name) DO NOTHING`,
  updateQueue: `
    UPDATE queues SET lease_ms = @leaseMs, delay_ms = @delayMs, max_attempts = @maxAttempts,
      retention_ms = @retentionMs, enqueue_paused = @enqueuePaused, dequeue_paused = @dequeuePaused,
      exclusive = @exclusive, updated_at = @now
    WHERE name = @name`,
  getQueue: `SELECT * FROM queues WHERE name = ?`,
  listQueues: `SELECT * FROM queues ORDER BY name`,
  queueNames: `SELECT name FROM queues`,

  insertMessage: `
    INSERT INTO messages (queue, state, priority, payload, metadata, idempotency_key, exclusivity_key,
                          max_attempts, visible_at, created_at)
    VALUES (@queue, @state, @priority, @payload, @metadata, @idempotencyKey, @exclusivityKey,
            @maxAttempts, @visibleAt, @now)
    ON CONFLICT (queue, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, state`,
  findByIdempotencyKey: `SELECT id, state FROM messages WHERE queue = ? AND idempotency_key = ?`,

  promoteQueue: `
    UPDATE messages SET state = 'pending'
    WHERE queue = ? AND state = 'invisible' AND visible_at <= ?`,
  expireQueue: `
    UPDATE messages SET
      state = CASE WHEN attempts >= max_attempts THEN 'errored' ELSE 'pending' END,
      finished_at = CASE WHEN attempts >= max_attempts THEN @now END,
      last_error = 'lease expired after attempt ' || attempts,
      lease_token = NULL, lease_expires_at = NULL
    WHERE queue = @queue AND state = 'running' AND lease_expires_at <= @now
    RETURNING state`,
  candidates: `
    SELECT id FROM messages
    WHERE queue = @queue AND state = 'pending' /*filter*/
    ORDER BY priority, id LIMIT @limit`,
  exclusiveCandidates: `
    SELECT id, priority, exclusivity_key FROM messages m
    WHERE queue = @queue AND state = 'pending' /*filter*/
      AND (priority > @afterPriority OR (priority = @afterPriority AND id > @afterId))
      AND (exclusivity_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM messages r
        WHERE r.queue = m.queue AND r.exclusivity_key = m.exclusivity_key AND r.state = 'running'))
    ORDER BY priority, id LIMIT @limit`,
  lease: `
    UPDATE messages SET state = 'running', attempts = attempts + 1, lease_token = @token, leased_at = @now,
      lease_expires_at = @expiresAt
    WHERE id = @id
    RETURNING *`,
  complete: `
    UPDATE messages SET state = 'completed', finished_at = @now, lease_token = NULL, lease_expires_at = NULL
    WHERE id = @id AND lease_token = @token AND state = 'running'
    RETURNING queue, exclusivity_key`,
  fail: `
    UPDATE messages SET
      state = CASE WHEN attempts >= max_attempts OR @final THEN 'errored' WHEN @delay > 0 THEN 'invisible' ELSE 'pending' END,
      finished_at = CASE WHEN attempts >= max_attempts OR @final THEN @now END,
      visible_at = @now + @delay, last_error = @error, lease_token = NULL, lease_expires_at = NULL
    WHERE id = @id AND lease_token = @token AND state = 'running'
    RETURNING id, state, queue, exclusivity_key`,
  release: `
    UPDATE messages SET state = CASE WHEN @delay > 0 THEN 'invisible' ELSE 'pending' END,
      attempts = attempts - 1, visible_at = @now + @delay, lease_token = NULL, lease_expires_at = NULL
    WHERE id = @id AND lease_token = @token AND state = 'running'
    RETURNING id, queue`,
  extend: `
    UPDATE messages SET lease_expires_at = @expiresAt
    WHERE id = @id AND lease_token = @token AND state = 'running'
    RETURNING id, lease_expires_at`,
  cancel: `
    UPDATE messages SET state = 'canceled', finished_at = @now, lease_token = NULL, lease_expires_at = NULL
    WHERE id = @id AND state IN ('invisible', 'pending', 'running')
    RETURNING id, queue, exclusivity_key`,
  get: `SELECT * FROM messages WHERE id = ?`,
  counts: `SELECT state, count(*) AS n FROM messages WHERE queue = ? GROUP BY state`,
  /** Ready messages by priority class (the offset of their priority from their enqueue time). */
  pendingByClass: `
    SELECT ${priorityClassSql('priority', 'created_at')} AS class, count(*) AS n, min(visible_at) AS oldest
    FROM messages WHERE queue = ? AND state = 'pending' GROUP BY 1`,
  gcQueue: `
    DELETE FROM messages WHERE id IN (
      SELECT id FROM messages
      WHERE queue = @queue AND state IN ${FINISHED} AND finished_at <= @now - @retentionMs
      LIMIT @limit)`,
  nextInvisible: `SELECT min(visible_at) AS t FROM messages WHERE queue = ? AND state = 'invisible'`,
  nextExpiry: `SELECT min(lease_expires_at) AS t FROM messages WHERE queue = ? AND state = 'running'`,
} as const;

/** `AND json_extract(metadata, '$."k"') = @f0 …`; keys are validated by the facade, values are bound. */
export function metadataFilter(keys: string[]): string {
  return keys.map((k, i) => ` AND json_extract(metadata, '$."${k}"') = @f${i}`).join('');
}

/** The workflow store's statements (executions, their trace, applied signals). */
export const sqliteWorkflowQueries = {
  insertExecution: `
    INSERT INTO executions (id, workflow, version, status, priority, parent_id, seq, doc, created_at, updated_at,
                            finished_at, owner, owner_until)
    VALUES (@id, @workflow, @version, @status, @priority, @parentId, @seq, @doc, @createdAt, @updatedAt,
            @finishedAt, @owner, @ownerUntil)
    ON CONFLICT (id) DO NOTHING`,
  updateExecution: `
    UPDATE executions SET version = @version, status = @status, priority = @priority, seq = @seq, doc = @doc,
      updated_at = @updatedAt, finished_at = @finishedAt,
      owner = CASE WHEN @keepOwner AND owner IS NOT NULL THEN owner ELSE @owner END,
      owner_until = CASE WHEN @keepOwner AND owner IS NOT NULL THEN owner_until ELSE @ownerUntil END
    WHERE id = @id AND seq = @seq - 1`,
  renewOwnership: `UPDATE executions SET owner_until = @until WHERE id = @id AND owner = @owner`,
  lapsedOwnership: `
    SELECT id FROM executions
    WHERE owner IS NOT NULL AND owner_until < @now AND status = 'running'
    ORDER BY owner_until LIMIT @limit`,
  insertTrace: `
    INSERT INTO execution_events (execution_id, seq, at, events) VALUES (?, ?, ?, ?)`,
  insertSearch: `INSERT INTO execution_search_backlog (id, body) VALUES (?, ?)`,
  // The backlog's oldest rows up to a count, then moved into the trigram index (searchIndexed).
  searchBacklogUpTo: `SELECT max(rowid) AS upto FROM (SELECT rowid FROM execution_search_backlog ORDER BY rowid LIMIT ?)`,
  searchIndex: `INSERT INTO execution_search (id, body) SELECT id, body FROM execution_search_backlog WHERE rowid <= ? ORDER BY rowid`,
  searchIndexed: `DELETE FROM execution_search_backlog WHERE rowid <= ?`,
  insertSignal: `INSERT INTO applied_signals (execution_id, message_id) VALUES (?, ?)`,
  dropSignals: `DELETE FROM applied_signals WHERE execution_id = ?`,
  signalApplied: `SELECT 1 FROM applied_signals WHERE execution_id = ? AND message_id = ?`,
  getExecution: `SELECT * FROM executions WHERE id = ?`,
  countByStatus: `SELECT status, count(*) AS n FROM executions GROUP BY status`,
  openOnOtherVersions: `
    SELECT id, version FROM executions WHERE workflow = ? AND status = 'running' AND version <> ?`,
  trace: `SELECT * FROM execution_events WHERE execution_id = ? ORDER BY id`,
  messageIdByKey: `SELECT id FROM messages WHERE queue = ? AND idempotency_key = ?`,
} as const;

const CALLERS = `
  WITH RECURSIVE up(name, depth) AS (
    SELECT caller, 1 FROM service_calls WHERE callee = ?
    UNION
    SELECT c.caller, up.depth + 1 FROM service_calls c JOIN up ON c.callee = up.name WHERE up.depth < 64
  )
  SELECT name, min(depth) AS depth FROM up GROUP BY name ORDER BY depth, name`;

/** The service store's statements (deployed services and their declared calls). */
export const sqliteServiceQueries = {
  upsertService: `
    INSERT INTO services (name, owner_team, owner_contact, description, secrets, definition, deployed_at)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET owner_team = excluded.owner_team, owner_contact = excluded.owner_contact,
      description = excluded.description, secrets = excluded.secrets, definition = excluded.definition,
      deployed_at = excluded.deployed_at`,
  dropCalls: `DELETE FROM service_calls WHERE caller = ?`,
  insertCall: `INSERT INTO service_calls (caller, callee) VALUES (?, ?)`,
  listServices: `
    SELECT s.*, (SELECT json_group_array(callee) FROM service_calls c WHERE c.caller = s.name) AS calls
    FROM services s ORDER BY s.name`,
  callersOf: CALLERS,
} as const;

/** The node registry's statements (distributed mode; one row per running node). */
export const sqliteClusterQueries = {
  beat: `
    INSERT INTO nodes (id, name, roles, pools, slots, host, pid, version, url, status, heartbeat_ms, duties,
      started_at, heartbeat_at)
    VALUES (@id, @name, @roles, @pools, @slots, @host, @pid, @version, @url, @status, @heartbeatMs, @duties,
      @startedAt, @heartbeatAt)
    ON CONFLICT (id) DO UPDATE SET status = excluded.status, url = excluded.url, duties = excluded.duties,
      heartbeat_ms = excluded.heartbeat_ms, heartbeat_at = excluded.heartbeat_at`,
  listNodes: `SELECT * FROM nodes ORDER BY started_at, id`,
  pruneNodes: `DELETE FROM nodes WHERE heartbeat_at < ?`,
} as const;

/** Ids whose search text matches: the trigram index, and the backlog the search-index duty has yet to move. */
function searchIn(match: string): string {
  return `SELECT id FROM execution_search WHERE body ${match} UNION ALL SELECT id FROM execution_search_backlog WHERE body ${match}`;
}

/**
 * The executions list with only the filters given, newest first: one statement per combination, so each gets
 * a plan that uses its index (a catch-all `(@x IS NULL OR …)` statement scans the table for every filter).
 */
export function listExecutionsSql(f: ExecutionFilter): { sql: string; params: Record<string, unknown> } {
  const where: string[] = [];
  const params: Record<string, unknown> = { limit: f.limit };
  const add = (cond: string, values: Record<string, unknown>): void => {
    where.push(cond);
    Object.assign(params, values);
  };
  if (f.workflow !== undefined) add('workflow = @workflow', { workflow: f.workflow });
  if (f.status !== undefined) add('status = @status', { status: f.status });
  if (f.parentId !== undefined) add('parent_id = @parentId', { parentId: f.parentId });
  if (f.before)
    add('(created_at, id) < (@beforeAt, @beforeId)', { beforeAt: f.before.createdAt, beforeId: f.before.id });
  if (f.service !== undefined)
    add("workflow LIKE @service ESCAPE '\\'", { service: `${likeEscape(f.service)}.%` });
  // FTS5's trigram index answers a LIKE of three characters or more, but not one with an ESCAPE clause: only
  // text holding a wildcard character needs one (and scans the search rows, still far smaller than documents).
  if (f.q !== undefined)
    add(
      /[%_\\]/.test(f.q) ? `id IN (${searchIn("LIKE @q ESCAPE '\\'")})` : `id IN (${searchIn('LIKE @q')})`,
      { q: `%${likeEscape(f.q)}%` },
    );
  const sql = `SELECT * FROM executions${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''}
    ORDER BY created_at DESC, id DESC LIMIT @limit`;
  return { sql, params };
}
