/**
 * One progress line per phase on stderr. On a terminal the line is rewritten in place; otherwise (CI logs,
 * redirected output) only the start and the end of each phase are written, so logs stay short.
 */
export class Progress {
  private readonly tty = process.stderr.isTTY;
  private label = '';
  private started = 0;
  private lastDraw = 0;

  start(label: string): void {
    this.label = label;
    this.started = performance.now();
    this.lastDraw = 0;
    if (this.tty) this.draw('…');
    else process.stderr.write(`[bench] ${label} …\n`);
  }

  /** Cheap to call in hot loops: redraws at most ten times a second. */
  update(text: string): void {
    if (!this.tty) return;
    const now = performance.now();
    if (now - this.lastDraw < 100) return;
    this.lastDraw = now;
    this.draw(text);
  }

  done(text = 'done'): void {
    const seconds = ((performance.now() - this.started) / 1000).toFixed(1);
    const line = `[bench] ${this.label}: ${text} (${seconds}s)`;
    process.stderr.write(this.tty ? `\r\x1b[K${line}\n` : `${line}\n`);
  }

  info(text: string): void {
    process.stderr.write(this.tty ? `\r\x1b[K[bench] ${text}\n` : `[bench] ${text}\n`);
  }

  private draw(text: string): void {
    process.stderr.write(`\r\x1b[K[bench] ${this.label}: ${text}`);
  }
}
