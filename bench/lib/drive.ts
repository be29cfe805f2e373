import type { WorkflowEngine } from '../../src/workflow/engine.js';

/** Starts executions of one workflow and waits for them: one at a time, or with a number in flight. */
export interface Driver {
  /** Starts one execution and resolves once it succeeded (a failure throws from the engine's listener). */
  one: () => Promise<void>;
  /** Runs `count` executions with `inFlight` in flight (each lane starts a new one when its last finished). */
  lanes: (count: number, inFlight: number, onDone?: (done: number) => void) => Promise<void>;
}

export function driveExecutions(engine: WorkflowEngine, workflow: string): Driver {
  // A result can be known before execute() has returned its id: remember those too.
  const waiting = new Map<string, () => void>();
  const early = new Set<string>();
  engine.onFinished((x) => {
    if (x.status !== 'succeeded')
      throw new Error(`execution ${x.id} ${x.status}: ${JSON.stringify(x.error)}`);
    const resolve = waiting.get(x.id);
    if (resolve) {
      waiting.delete(x.id);
      resolve();
    } else early.add(x.id);
  });
  let n = 0;
  const one = async (): Promise<void> => {
    const { id } = await engine.execute(workflow, { n: n++ });
    if (early.delete(id)) return;
    await new Promise<void>((resolve) => waiting.set(id, resolve));
  };
  const lanes = async (count: number, inFlight: number, onDone?: (done: number) => void): Promise<void> => {
    let started = 0;
    let done = 0;
    const lane = async (): Promise<void> => {
      while (started < count) {
        started++;
        await one();
        done++;
        onDone?.(done);
      }
    };
    await Promise.all(Array.from({ length: Math.min(inFlight, count) }, lane));
  };
  return { one, lanes };
}
