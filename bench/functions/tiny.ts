import { z } from 'zod';
import { fn } from '../../src/index.js';

const N = z.object({ n: z.number() });

/** The no-op of the dispatch round trip: validate, answer, validate. */
export const noop = fn({ input: N, output: N }, (i) => i);

/** A tiny function, one call per invocation. */
export const double = fn({ input: N, output: N }, (i) => ({ n: i.n * 2 }));

/** The same function taking micro-batches. */
export const doubleBatch = fn({ input: N, output: N, batch: { max: 50, waitMs: 5 } }, (inputs) =>
  inputs.map((i) => ({ n: i.n * 2 })),
);
