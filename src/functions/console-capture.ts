import { format } from 'node:util';
import type { LogLevel } from './protocol.js';

/** Longest line a runner sends; a handler printing a megabyte must not stall its thread's channel. */
export const MAX_LOG_LINE = 4_000;

const LEVELS: [keyof Console, LogLevel][] = [
  ['log', 'info'],
  ['info', 'info'],
  ['debug', 'debug'],
  ['warn', 'warn'],
  ['error', 'error'],
];

/**
 * Routes a runner's `console` output to the invocation that printed it (SPEC §8: function output is captured
 * per invocation). `owner` names the run a line belongs to, or undefined when nobody can tell (then the line
 * goes to the runner's own stderr, as before). Without AsyncLocalStorage, whose promise hooks would tax every
 * run of every function, a line is attributed to the run whose handler is on the stack, or, after an await,
 * to the only run in flight; concurrent asynchronous runs in one runner print to stderr instead.
 */
export function captureConsole(
  owner: () => number | undefined,
  sink: (id: number, level: LogLevel, msg: string) => void,
): void {
  const c = console as unknown as Record<string, (...args: unknown[]) => void>;
  for (const [method, level] of LEVELS) {
    const original = c[method]!.bind(console);
    c[method] = (...args: unknown[]): void => {
      const id = owner();
      if (id === undefined) return original(...args);
      const line = format(...args);
      sink(id, level, line.length > MAX_LOG_LINE ? `${line.slice(0, MAX_LOG_LINE)}…` : line);
    };
  }
}
