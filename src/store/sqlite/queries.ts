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
