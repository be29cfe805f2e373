import { describe, expect, it } from 'vitest';
import { isUnreachable } from './unreachable.js';

describe('isUnreachable', () => {
  it('is true for a database that is down, restarting or cut off', () => {
    expect(
      isUnreachable(
        Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
      ),
    ).toBe(true);
    expect(
      isUnreachable(Object.assign(new Error('the database system is starting up'), { code: '57P03' })),
    ).toBe(true);
    expect(
      isUnreachable(
        Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
      ),
    ).toBe(true);
    expect(isUnreachable(new Error('Connection terminated unexpectedly'))).toBe(true);
  });

  it('is false for mistakes waiting will not fix', () => {
    expect(isUnreachable(Object.assign(new Error('password authentication failed'), { code: '28P01' }))).toBe(
      false,
    );
    expect(isUnreachable(Object.assign(new Error('syntax error'), { code: '42601' }))).toBe(false);
    expect(isUnreachable(new Error('schema name "X" must match'))).toBe(false);
    expect(isUnreachable(undefined)).toBe(false);
  });
});
