import { describe, expect, it } from 'vitest';
import type { RunInput, Runner } from './runtimes/runner.js';
import { WorkerPool } from './worker-pool.js';

/** A runner that is up at once and dies on request: enough to check the pool's accounting. */
class StubRunner implements Runner {
  readonly kind = 'thread';
  readonly name = 'stub';
  readonly ready = Promise.resolve();
  dead = false;
  load = 0;
  private listeners: ((reason: string) => void)[] = [];
  run(_input: RunInput): Promise<unknown> {
    return Promise.resolve(undefined);
  }
  send(): void {}
  cancel(): void {}
  onDeath(l: (reason: string) => void): void {
    this.listeners.push(l);
  }
  kill(): void {
    this.dead = true;
    for (const l of this.listeners) l('killed');
  }
  close(): Promise<void> {
    this.dead = true;
    return Promise.resolve();
  }
}

function pool(o: { min: number; max: number; idleMs?: number }): { pool: WorkerPool; made: StubRunner[] } {
  const made: StubRunner[] = [];
  const p = new WorkerPool({
    label: 'test',
    min: o.min,
    max: o.max,
    perRunner: 1,
    idleMs: o.idleMs ?? 0,
    spawn: () => {
      const r = new StubRunner();
      made.push(r);
      return r;
    },
  });
  return { pool: p, made };
}

describe('WorkerPool', () => {
  it('warm capacity is started up front, and acquiring within it starts nothing', async () => {
    const { pool: p } = pool({ min: 2, max: 4 });
    await p.warm();
    const a = await p.acquire();
    const b = await p.acquire();
    expect(a).not.toBe(b);
    expect(p.stats).toMatchObject({ started: 2, startedOnInvocation: 0, live: 2 });
    const c = await p.acquire();
    expect(p.stats).toMatchObject({ started: 3, startedOnInvocation: 1 });
    p.released(a);
    expect(await p.acquire()).toBe(a);
    p.released(c);
    await p.close();
  });

  it('scales ahead of queue depth, never past max', async () => {
    const { pool: p } = pool({ min: 1, max: 3 });
    await p.warm();
    p.scaleFor(10);
    expect(p.stats).toMatchObject({ started: 3, startedAhead: 3, startedOnInvocation: 0 });
    for (let i = 0; i < 3; i++) await p.acquire();
    expect(p.stats.startedOnInvocation).toBe(0);
    await p.close();
  });

  it('replaces a dead runner to keep warm capacity, and a waiter gets the next free runner', async () => {
    const { pool: p, made } = pool({ min: 1, max: 1 });
    await p.warm();
    const first = await p.acquire();
    const waiting = p.acquire();
    made[0]!.kill();
    expect(p.stats).toMatchObject({ replaced: 1, live: 1 });
    const next = await waiting;
    expect(next).not.toBe(first);
    expect(next.dead).toBe(false);
    await p.close();
  });

  it('retires runners above warm capacity after they idled', async () => {
    const { pool: p } = pool({ min: 1, max: 3, idleMs: 20 });
    await p.warm();
    p.scaleFor(3);
    expect(p.size).toBe(3);
    await new Promise((r) => setTimeout(r, 400));
    expect(p.size).toBe(1);
    expect(p.stats.retired).toBe(2);
    await p.close();
  });
});
