/**
 * Everything a benchmark creates (schemas, files, pools, workers) registers its undo here, so a failure or
 * Ctrl-C still leaves the database and the disk as they were.
 */
export class Cleanup {
  private readonly steps: { name: string; fn: () => Promise<void> | void }[] = [];

  /** Returns a function that runs this step now (and only once) instead of at the end. */
  add(name: string, fn: () => Promise<void> | void): () => Promise<void> {
    const step = { name, fn };
    this.steps.push(step);
    return async () => {
      const i = this.steps.indexOf(step);
      if (i < 0) return;
      this.steps.splice(i, 1);
      await fn();
    };
  }

  /** Runs the remaining steps, newest first; a failing step is reported and does not stop the others. */
  async runAll(): Promise<void> {
    while (this.steps.length > 0) {
      const { name, fn } = this.steps.pop()!;
      try {
        await fn();
      } catch (error) {
        process.stderr.write(`[bench] cleanup "${name}" failed: ${String(error)}\n`);
      }
    }
  }
}
