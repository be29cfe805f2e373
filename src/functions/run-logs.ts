import type { LogLevel } from './protocol.js';

/** One line a handler printed (`console.*`) or logged (`ctx.log`), as the trace stores it. */
export interface LogLine {
  /** Epoch ms. */
  at: number;
  level: LogLevel;
  msg: string;
}

/** Lines kept per run: the trace is a record, not a log shipper; the rest are counted. */
export const MAX_LOG_LINES = 200;

/** The lines of one handler call, capped; `add` is handed to the runner as its onLog. */
export class RunLogs {
  readonly lines: LogLine[] = [];
  dropped = 0;

  /** `redact` rewrites each line before it is kept (the redaction hook, see RedactOptions). */
  constructor(private readonly redact?: (text: string) => string) {}

  readonly add = (level: LogLevel, msg: string, at: number): void => {
    if (this.lines.length < MAX_LOG_LINES)
      this.lines.push({ at, level, msg: this.redact ? this.redact(msg) : msg });
    else this.dropped++;
  };

  /** What a RunInfo carries: nothing when the handler printed nothing. */
  info(): { logs?: LogLine[]; logsDropped?: number } {
    if (this.lines.length === 0) return {};
    return { logs: this.lines, ...(this.dropped > 0 && { logsDropped: this.dropped }) };
  }
}
