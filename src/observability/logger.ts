import { pino, type Logger } from 'pino';

/**
 * Paths never written to logs. The security layer adds secret-bearing fields here; credentials in headers
 * are covered from the start.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  '*.password',
  '*.secret',
  '*.token',
];

export function createLogger(level: string, extraPaths: readonly string[] = []): Logger {
  return pino({
    level,
    redact: { paths: [...REDACTED_PATHS, ...extraPaths], censor: '[redacted]' },
    base: { app: 'cosmos' },
  });
}

export type { Logger };
