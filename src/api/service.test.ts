import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CosmosError } from '../errors.js';
import { fn } from '../functions/define.js';
import { dag } from '../workflow/dag.js';
import { rule, rules } from '../workflow/define.js';
import { callCycles, defineService, invokedFunctions, type ServiceSpec } from './service.js';

const echo = fn({ input: z.unknown(), output: z.unknown() }, (x) => x);
/** A workflow that invokes `fn` by a literal name, as rules are written. */
const asks = (fnName: 'echo' | 'encode' | 'split') =>
  rules<unknown, { asked: boolean }>({
    initial: () => ({ asked: false }),
    rules: [
      rule('ask', {
        match: (s) => !s.asked,
        action: (s, ctx) => {
          s.asked = true;
          if (fnName === 'echo') ctx.invoke('echo', {});
          else if (fnName === 'encode') ctx.invoke('encode', {});
          else ctx.invoke('split', {});
        },
      }),
    ],
  });

const echoes = rules<unknown, { asked: boolean }>({
  initial: () => ({ asked: false }),
  rules: [
    rule('ask', {
      match: (s) => !s.asked,
      action: (s, ctx) => {
        s.asked = true;
        ctx.invoke('echo', {});
      },
    }),
  ],
});

const valid = (): ServiceSpec => ({
  name: 'media',
  owner: { team: 'media-team' },
  operations: { run: { input: z.object({}), output: z.unknown(), workflow: 'main' } },
  workflows: { main: echoes },
  functions: { echo },
});

function problemsOf(spec: ServiceSpec): string[] {
  try {
    defineService(spec);
  } catch (e) {
    expect(e).toBeInstanceOf(CosmosError);
    expect((e as CosmosError).code).toBe('service_invalid');
    return (e as CosmosError).details!.problems as string[];
  }
  throw new Error('the definition was accepted');
}

describe('defineService', () => {
  it('accepts a good definition, with defaults for what it leaves out', () => {
    const s = defineService(valid());
    expect(s).toMatchObject({ kind: 'cosmos.service', name: 'media', calls: [], secrets: [] });
  });

  it('names a function a rule invokes that the service does not have', () => {
    const encodes = rules<unknown, { asked: boolean }>({
      initial: () => ({ asked: false }),
      rules: [
        rule('ask', {
          match: (s) => !s.asked,
          action: (s, ctx) => {
            s.asked = true;
            ctx.invoke('encode', {});
          },
        }),
      ],
    });
    expect(problemsOf({ ...valid(), workflows: { main: encodes } })).toEqual([
      'workflow main: invokes function "encode", which is not one of this service\'s functions (echo)',
    ]);
  });

  it('names a DAG stage function the service does not have', () => {
    const d = dag({ stages: { a: { fn: 'transcode', input: () => ({}) } }, output: (s) => s });
    expect(problemsOf({ ...valid(), workflows: { main: d } })[0]).toMatch(/invokes function "transcode"/);
  });

  it('refuses an operation without a workflow, and reports every problem at once', () => {
    const problems = problemsOf({
      ...valid(),
      name: 'Bad Name',
      owner: { team: '' },
      operations: { run: { input: z.object({}), output: z.unknown(), workflow: 'missing' } },
      calls: ['Bad Name'],
      secrets: ['lower'],
    });
    expect(problems).toEqual([
      expect.stringMatching(/^name "Bad Name" must be lowercase/),
      expect.stringMatching(/^owner.team is required/),
      'operation run: workflow "missing" is not one of this service\'s workflows (main)',
      'calls must be a list of service names',
      'secrets must be a list of UPPER_SNAKE_CASE names',
    ]);
  });

  it('checks priority ranges and schemas', () => {
    const problems = problemsOf({
      ...valid(),
      operations: {
        run: {
          input: {} as z.ZodType,
          output: z.unknown(),
          workflow: 'main',
          priority: { default: 5, min: 10, max: 0 },
        },
      },
    });
    expect(problems).toEqual([
      'operation run: input must be a zod schema',
      'operation run: priority.min is above priority.max',
      'operation run: priority.default 5 is outside [min, max]',
    ]);
  });

  it('refuses a service that lists itself in calls', () => {
    expect(problemsOf({ ...valid(), calls: ['media'] })).toEqual(['a service does not list itself in calls']);
  });
});

describe('invokedFunctions', () => {
  it('finds literal names in rules and DAG stages', () => {
    expect(invokedFunctions(asks('split')).sort()).toEqual(['echo', 'encode', 'split']);
    expect(invokedFunctions(dag({ stages: { a: { fn: 'a1', input: () => 1 } }, output: (s) => s }))).toEqual([
      'a1',
    ]);
  });
});

describe('callCycles', () => {
  it('finds a cycle through several services, and none in a layered graph', () => {
    expect(
      callCycles([
        { name: 'a', calls: ['b'] },
        { name: 'b', calls: ['c'] },
        { name: 'c', calls: ['a'] },
      ]),
    ).toEqual(['a → b → c → a']);
    expect(
      callCycles([
        { name: 'a', calls: ['b', 'c'] },
        { name: 'b', calls: ['c'] },
        { name: 'c', calls: [] },
      ]),
    ).toEqual([]);
  });
});
