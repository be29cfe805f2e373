import { rule, rules } from '../../src/index.js';

interface S {
  n: number;
  done: number;
  waiting: boolean;
}

/** One no-op step: invoke `noop`, then count its answer. */
const stepRule = (k: number) =>
  rule<S>(`step${k}`, {
    match: (s) => s.done === k - 1 && !s.waiting,
    action: (s, ctx) => {
      s.waiting = true;
      ctx.invoke('noop', { n: s.n });
    },
    reaction: (s, r, ctx) => {
      s.waiting = false;
      s.done = k;
      if (k === 3) ctx.complete(r.output);
    },
  });

/** The workflow benchmark's subject: three sequential no-op function steps, as the DBOS peer runs them. */
export const threeSteps = rules<{ n: number }, S>({
  initial: ({ n }) => ({ n, done: 0, waiting: false }),
  rules: [stepRule(1), stepRule(2), stepRule(3)],
});
