import type { SerializedError } from './failure.js';

/**
 * Messages between a node and the runners that execute handlers (worker threads and sandboxed child
 * processes speak the same protocol). Kept small and flat: every field is structured-cloned per invocation.
 */

/** Where a handler lives: a bundled ES module on local disk and the function's name in it. */
export interface FunctionRef {
  module: string;
  name: string;
}

export interface RunRequest {
  t: 'run';
  id: number;
  /** Either the function itself, or `fid`, a handle a `load` message gave it earlier (smaller per run). */
  ref?: FunctionRef;
  fid?: number;
  /** One input, or an array of inputs for a batch handler. */
  input: unknown;
  batch: boolean;
  attempt: number;
  invocationId: string;
  /** Local paths of file inputs and the directory the handler writes outputs to. */
  files?: { inputs: Record<string, string>; outDir: string };
}

export type ToRunner =
  RunRequest | { t: 'load'; fid: number; ref: FunctionRef } | { t: 'cancel'; id: number } | { t: 'shutdown' };

/**
 * A batch's answer: one output per input, in order. An input that failed alone (bad input, bad output, or an
 * Error the handler returned in its place) has its error under its index in `failed` and a null output. Kept
 * flat on purpose: wrapping every output in its own `{ok, value}` more than doubled the cost of copying a
 * batch between threads.
 */
export interface BatchAnswer {
  outputs: unknown[];
  failed?: Record<number, SerializedError>;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type FromRunner =
  | { t: 'ready' }
  /** `output` is a BatchAnswer when the request was a batch. */
  | { t: 'ok'; id: number; output: unknown }
  | { t: 'err'; id: number; error: SerializedError }
  | { t: 'beat'; id: number }
  | { t: 'log'; id: number; level: LogLevel; msg: string; at: number };

/**
 * The worker-thread transport's compact forms of the two per-invocation messages. Structured clone cost
 * grows with every property, and on a warm no-op these two messages are most of the round trip.
 *   run: [RUN, id, fid, input, attempt, invocationId] and a trailing `true` for a batch
 *   ok:  [id, output, handler µs]: how long the handler took on the thread, which tells the dispatcher
 *        what may ride in a convoy (see Dispatcher); a trailing `true` for a batch's answer
 * A batch's inputs and its answer travel as JSON text. Structured clone walks every item object by object
 * in C++ and costs about four times JSON's encoding: copying batches was most of the node's main thread
 * under a stream of micro-batches. Inputs and outputs are JSON values anyway (queue payloads, results and
 * workflow state are stored as JSON), so the text changes nothing a handler or a caller can see, but for one
 * thing: an item that is `undefined` as a whole (an optional input or output) would become null inside the
 * array. A batch holding one goes, or comes back, by structured clone instead ({t: 'run'} / {t: 'ok'}).
 */
export const RUN = 0;
export type CompactRun =
  | [typeof RUN, number, number, unknown, number, string]
  | [typeof RUN, number, number, string, number, string, true];
export type CompactOk = [number, unknown] | [number, unknown, number] | [number, string, number, true];

/**
 * Under load, runs sent in the same turn of the event loop travel in one message, and so do the answers a
 * thread has ready at once: each postMessage also wakes the other side, which costs more than the copy.
 */
export const RUN_MANY = 1;
export type CompactRunMany = [typeof RUN_MANY, CompactRun[]];
export interface ManyAnswers {
  many: (FromRunner | CompactOk)[];
}
