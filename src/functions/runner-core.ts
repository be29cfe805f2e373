import { pathToFileURL } from 'node:url';
import type { z } from 'zod';
import { captureConsole, MAX_LOG_LINE } from './console-capture.js';
import { findFunction, type FunctionContext, type FunctionDefinition } from './define.js';
import { notJson, serializeError, type SerializedError } from './failure.js';
import type {
  BatchAnswer,
  LogLevel,
  CompactOk,
  CompactRun,
  FromRunner,
  FunctionRef,
  RunRequest,
  ToRunner,
} from './protocol.js';

interface Running {
  def: FunctionDefinition | undefined;
  abort: AbortController | undefined;
  canceled: boolean;
  lastBeat: number;
}

/**
 * The part of a runner shared by worker threads and sandboxed processes: load the bundle, validate the
 * input, call the handler with its context, validate the output, answer. Everything here runs inside the
 * runner, so a handler's schemas and code never need to cross the boundary. The per-run path allocates as
 * little as it can: it is most of a warm dispatch's overhead over a bare worker_threads round trip.
 */
export function createRunner(
  send: (m: FromRunner | CompactOk) => void,
  options: { compact?: boolean } = {},
): (m: ToRunner | CompactRun) => void {
  const loaded = new Map<string, FunctionDefinition>();
  const loading = new Map<string, Promise<FunctionDefinition>>();
  const handles = new Map<number, FunctionRef>();
  const inFlight = new Map<number, Running>();

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

  // One timer for the runner's heartbeats, not one per invocation.
  const beats = setInterval(() => {
    const now = Date.now();
    for (const [id, r] of inFlight)
      if (r.def && now - r.lastBeat >= r.def.options.heartbeatMs) {
        r.lastBeat = now;
        send({ t: 'beat', id });
      }
  }, 1_000);
  beats.unref();

  // The run whose handler is on the stack right now (console lines printed synchronously belong to it).
  let onStack: number | undefined;
  captureConsole(
    () => {
      if (onStack !== undefined) return onStack;
      let only: number | undefined;
      for (const [id, r] of inFlight) {
        if (!r.def) continue;
        if (only !== undefined) return undefined;
        only = id;
      }
      return only;
    },
    (id, level, msg) => send({ t: 'log', id, level, msg, at: Date.now() }),
  );

  const byHandle = new Map<number, FunctionDefinition>();
  const answer = (req: RunRequest, output: unknown, since: number): void => {
    if (!options.compact) return send({ t: 'ok', id: req.id, output });
    const us = Math.round((performance.now() - since) * 1000);
    if (!req.batch) return send([req.id, output, us]);
    // An output that is `undefined` as a whole would come back as null in JSON text: structured clone.
    if ((output as BatchAnswer).outputs.includes(undefined)) return send({ t: 'ok', id: req.id, output });
    let text: string;
    try {
      text = JSON.stringify(output);
    } catch (e) {
      return fail(req.id, new Classified(notJson('output', e)));
    }
    send([req.id, text, us, true]);
  };
  const fail = (id: number, e: unknown): void =>
    send({ t: 'err', id, error: (e as { serialized?: SerializedError }).serialized ?? serializeError(e) });

  /** Runs a request whose function is loaded; synchronous all the way when the handler is. */
  /**
   * Runs a request whose function is loaded; synchronous all the way when the handler is. Only a run that
   * goes asynchronous is tracked in `inFlight`: a synchronous handler cannot be told anything mid-run.
   */
  const runLoaded = (req: RunRequest, def: FunctionDefinition, state: Running): void => {
    state.def = def;
    const ctx = new Context(req, state, send);
    const since = performance.now();
    onStack = req.id;
    try {
      const out = req.batch ? runBatch(def, req.input as unknown[], ctx) : runOne(def, req.input, ctx);
      onStack = undefined;
      if (out instanceof Promise) {
        state.lastBeat = Date.now();
        inFlight.set(req.id, state);
        out
          .then(
            (v) => answer(req, v, since),
            (e: unknown) => fail(req.id, e),
          )
          .finally(() => inFlight.delete(req.id));
      } else {
        inFlight.delete(req.id);
        answer(req, out, since);
      }
    } catch (e) {
      onStack = undefined;
      inFlight.delete(req.id);
      fail(req.id, e);
    }
  };

  const run = (req: RunRequest): void => {
    const state: Running = { def: undefined, abort: undefined, canceled: false, lastBeat: 0 };
    const def = req.fid !== undefined ? byHandle.get(req.fid) : undefined;
    if (def) return runLoaded(req, def, state);
    // Registered before the bundle loads, so a cancel that arrives meanwhile is not lost.
    state.lastBeat = Date.now();
    inFlight.set(req.id, state);
    const ref = req.ref ?? handles.get(req.fid!);
    if (!ref) {
      inFlight.delete(req.id);
      return fail(req.id, new Error(`unknown function handle ${String(req.fid)}`));
    }
    const ready = loaded.get(key(ref));
    if (ready) return runLoaded(req, ready, state);
    load(ref).then(
      (d) => {
        if (req.fid !== undefined) byHandle.set(req.fid, d);
        runLoaded(req, d, state);
      },
      (e: unknown) => {
        inFlight.delete(req.id);
        fail(req.id, e);
      },
    );
  };

  return (m: ToRunner | CompactRun): void => {
    if (Array.isArray(m))
      run({
        t: 'run',
        id: m[1],
        fid: m[2],
        // The node encoded it (see CompactRun): it parses.
        input: m[6] === true ? (JSON.parse(m[3] as string) as unknown) : m[3],
        attempt: m[4],
        invocationId: m[5],
        batch: m[6] === true,
      });
    else if (m.t === 'run') run(m);
    else if (m.t === 'load') handles.set(m.fid, m.ref);
    else if (m.t === 'cancel') {
      const r = inFlight.get(m.id);
      if (!r) return;
      r.canceled = true;
      r.abort?.abort(new Error('invocation canceled'));
    } else clearInterval(beats);
  };
}

/** A handler's context. A class, so the per-run cost is one small object; the signal is made on first use. */
class Context implements FunctionContext {
  readonly invocationId: string;
  readonly attempt: number;
  readonly files: FunctionContext['files'];

  constructor(
    private readonly req: RunRequest,
    private readonly state: Running,
    private readonly send: (m: FromRunner | CompactOk) => void,
  ) {
    this.invocationId = req.invocationId;
    this.attempt = req.attempt;
    this.files = req.files ?? { inputs: {}, outDir: '' };
  }

  get signal(): AbortSignal {
    this.state.abort ??= new AbortController();
    if (this.state.canceled) this.state.abort.abort(new Error('invocation canceled'));
    return this.state.abort.signal;
  }

  heartbeat(): void {
    this.send({ t: 'beat', id: this.req.id });
  }

  log(level: LogLevel, msg: string): void {
    const line = String(msg);
    this.send({
      t: 'log',
      id: this.req.id,
      level,
      msg: line.length > MAX_LOG_LINE ? `${line.slice(0, MAX_LOG_LINE)}…` : line,
      at: Date.now(),
    });
  }
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

type Call = (input: unknown, ctx: FunctionContext) => unknown;

/** The answer, or a promise of it when the handler is asynchronous. */
function runOne(def: FunctionDefinition, raw: unknown, ctx: FunctionContext): unknown {
  const input = def.input.safeParse(raw);
  if (!input.success) throw new Classified(invalid('input', input.error));
  const value = (def.handler as Call)(input.data, ctx);
  return value instanceof Promise ? value.then((v) => checkOutput(def, v)) : checkOutput(def, value);
}

function checkOutput(def: FunctionDefinition, value: unknown): unknown {
  const output = def.output.safeParse(value);
  if (!output.success) throw new Classified(invalid('output', output.error));
  return output.data;
}

async function runBatch(
  def: FunctionDefinition,
  raws: unknown[],
  ctx: FunctionContext,
): Promise<BatchAnswer> {
  const outputs: unknown[] = new Array<unknown>(raws.length).fill(null);
  let failed: Record<number, SerializedError> | undefined;
  const fail = (i: number, error: SerializedError): void => {
    (failed ??= {})[i] = error;
  };
  const valid: unknown[] = [];
  const at: number[] = [];
  for (let i = 0; i < raws.length; i++) {
    const parsed = def.input.safeParse(raws[i]);
    if (parsed.success) {
      valid.push(parsed.data);
      at.push(i);
    } else fail(i, invalid('input', parsed.error));
  }
  if (valid.length > 0) {
    const answers = await (def.handler as Call)(valid, ctx);
    if (!Array.isArray(answers) || answers.length !== valid.length)
      throw new Classified({
        name: 'OutputInvalid',
        message: `a batch handler must return an array of ${valid.length} answers, one per input`,
        failure: 'output',
      });
    for (let j = 0; j < answers.length; j++) {
      const answer: unknown = answers[j];
      const i = at[j]!;
      if (answer instanceof Error) {
        fail(i, serializeError(answer));
        continue;
      }
      const output = def.output.safeParse(answer);
      if (output.success) outputs[i] = output.data;
      else fail(i, invalid('output', output.error));
    }
  }
  return failed ? { outputs, failed } : { outputs };
}
