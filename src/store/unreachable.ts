/**
 * Whether an error means the database cannot be reached right now (down, restarting, failing over, the
 * connection cut), as opposed to a mistake that waiting will not fix (bad credentials, a bad schema, a bug).
 */
export function isUnreachable(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  const code = typeof e.code === 'string' ? e.code : '';
  // Node's socket errors, and PostgreSQL's "cannot connect now" / admin shutdown / crash shutdown classes.
  if (
    ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN'].includes(
      code,
    )
  )
    return true;
  if (code === '57P01' || code === '57P02' || code === '57P03' || code.startsWith('08')) return true;
  const message = typeof e.message === 'string' ? e.message : '';
  return /Connection terminated|connection timeout|timeout expired|server closed the connection/i.test(
    message,
  );
}
