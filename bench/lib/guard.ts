import type { Cleanup } from './cleanup.js';
import type { Progress } from './progress.js';

/**
 * Ctrl-C, SIGTERM and a hang all end a benchmark the same way: its cleanup runs (schemas dropped, workers
 * stopped, temp files removed) and the process exits. Returns the function that disarms the guard.
 */
export function guardRun(progress: Progress, cleanup: Cleanup, deadlineMs: number): () => void {
  const onSignal = (signal: NodeJS.Signals): void => {
    progress.info(`${signal}: cleaning up`);
    void cleanup.runAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // A run is meant to take minutes; one that hangs somewhere must still end, and clean up.
  const deadline = setTimeout(() => {
    progress.info(`still running after ${deadlineMs / 60_000} minutes: aborting`);
    void cleanup.runAll().finally(() => process.exit(1));
  }, deadlineMs);
  deadline.unref();
  return () => {
    clearTimeout(deadline);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}
