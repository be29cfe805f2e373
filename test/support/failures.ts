import { expect } from 'vitest';
import { FunctionFailure } from '../../src/functions/failure.js';

/** The FunctionFailure a run rejected with; fails the test if it resolved or rejected with something else. */
export async function failureOf(p: Promise<unknown>): Promise<FunctionFailure> {
  const e = await p.then(
    (v) => {
      throw new Error(`expected a failure, got ${JSON.stringify(v)}`);
    },
    (e: unknown) => e,
  );
  expect(e).toBeInstanceOf(FunctionFailure);
  return e as FunctionFailure;
}
