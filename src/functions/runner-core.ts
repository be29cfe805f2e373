import { pathToFileURL } from 'node:url';
import type { z } from 'zod';
import { findFunction, type FunctionContext, type FunctionDefinition } from './define.js';
import { serializeError, type SerializedError } from './failure.js';
import type { BatchItemResult, FromRunner, FunctionRef, RunRequest, ToRunner } from './protocol.js';

/**
 * The part of a runner shared by worker threads and sandboxed processes: load the bundle, validate the
 * input, call the handler with its context, validate the output, answer. Everything here runs inside the
 * runner, so a handler's schemas and code never need to cross the boundary.
 */
export function createRunner(send: (m: FromRunner) => void): (m: ToRunner) => void {
  const loaded = new Map<string, FunctionDefinition>();
  const loading = new Map<string, Promise<FunctionDefinition>>();
  const inFlight = new Map<number, AbortController>();

  const key = (ref: FunctionRef): string => `${ref.module}\u0000${ref.name}`;
  const load = (ref: FunctionRef): Promise<FunctionDefinition> => {
    let p = loading.get(key(ref));
    if (!p) {
      p = import(pathToFileURL(ref.module).href).then((mod: Record<string, unknown>) => {
        const def = findFunction(mod, ref.name);
        if (!def) throw new Error(`function "${ref.name}" is not exported by ${ref.module}`);
        loaded.set(key(ref), def);
        return def;
      });
      loading.set(key(ref), p);
      p.catch(() => loading.delete(key(ref)));
    }
    return p;
  };

  const run = async (req: RunRequest): Promise<void> => {
    const abort = new AbortController();
    inFlight.set(req.id, abort);
    let beat: NodeJS.Timeout | undefined;
    try {
      const def = loaded.get(key(req.ref)) ?? (await load(req.ref));
      const ctx: FunctionContext = {
        invocationId: req.invocationId,
        attempt: req.attempt,
        signal: abort.signal,
        heartbeat: () => send({ t: 'beat', id: req.id }),
        log: (level, msg) => send({ t: 'log', id: req.id, level, msg: String(msg), at: Date.now() }),
        files: req.files ?? { inputs: {}, outDir: '' },
      };
      // A cancel that arrived while the bundle loaded must not go unheard by a handler that only listens.
      if (abort.signal.aborted) throw new Error('invocation canceled before it started');
      beat = setInterval(() => ctx.heartbeat(), def.options.heartbeatMs);
      beat.unref();
      const output = req.batch
        ? await runBatch(def, req.input as unknown[], ctx)
        : await runOne(def, req.input, ctx);
      send({ t: 'ok', id: req.id, output });
    } catch (e) {
      send({
        t: 'err',
        id: req.id,
        error: (e as { serialized?: SerializedError }).serialized ?? serializeError(e),
      });
    } finally {
      if (beat) clearInterval(beat);
      inFlight.delete(req.id);
    }
  };

  return (m: ToRunner): void => {
    if (m.t === 'run') void run(m);
    else if (m.t === 'cancel') inFlight.get(m.id)?.abort(new Error('invocation canceled'));
  };
}

/** An error the runner classified itself; carried as-is to the node. */
class Classified extends Error {
  constructor(readonly serialized: SerializedError) {
    super(serialized.message);
  }
}

function invalid(what: 'input' | 'output', error: z.ZodError): SerializedError {
  return {
    name: what === 'input' ? 'InputInvalid' : 'OutputInvalid',
    message: `${what} does not match the function's schema: ${error.issues
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('; ')}`,
    failure: what,
    issues: error.issues.map((i) => ({ path: i.path.map(String), message: i.message })),
  };
}

async function runOne(def: FunctionDefinition, raw: unknown, ctx: FunctionContext): Promise<unknown> {
  const input = def.input.safeParse(raw);
  if (!input.success) throw new Classified(invalid('input', input.error));
  const value = await (def.handler as (i: unknown, c: FunctionContext) => unknown)(input.data, ctx);
  const output = def.output.safeParse(value);
  if (!output.success) throw new Classified(invalid('output', output.error));
  return output.data;
}

async function runBatch(
  def: FunctionDefinition,
  raws: unknown[],
  ctx: FunctionContext,
): Promise<BatchItemResult[]> {
  const results: BatchItemResult[] = new Array<BatchItemResult>(raws.length);
  const valid: unknown[] = [];
  const at: number[] = [];
  raws.forEach((raw, i) => {
    const parsed = def.input.safeParse(raw);
    if (parsed.success) {
      valid.push(parsed.data);
      at.push(i);
    } else results[i] = { ok: false, error: invalid('input', parsed.error) };
  });
  if (valid.length > 0) {
    const answers = await def.handler(valid, ctx);
    if (!Array.isArray(answers) || answers.length !== valid.length)
      throw new Classified({
        name: 'OutputInvalid',
        message: `a batch handler must return an array of ${valid.length} answers, one per input`,
        failure: 'output',
      });
    answers.forEach((answer: unknown, j) => {
      const i = at[j]!;
      if (answer instanceof Error) {
        results[i] = { ok: false, error: serializeError(answer) };
        return;
      }
      const output = def.output.safeParse(answer);
      results[i] = output.success
        ? { ok: true, value: output.data }
        : { ok: false, error: invalid('output', output.error) };
    });
  }
  return results;
}
