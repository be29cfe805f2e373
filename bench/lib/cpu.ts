import os from 'node:os';

export interface CpuMark {
  machine: { busy: number; total: number };
  process: NodeJS.CpuUsage;
  at: number;
}

/** Busy and total core-milliseconds of the whole machine since boot, from os.cpus(). */
export function machineCpuMs(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const c of os.cpus()) {
    const t = c.times;
    busy += t.user + t.nice + t.sys + t.irq;
    total += t.user + t.nice + t.sys + t.irq + t.idle;
  }
  return { busy, total };
}

/** CPU time consumed so far by the whole machine and by this process. */
export function cpuMark(): CpuMark {
  return { machine: machineCpuMs(), process: process.cpuUsage(), at: performance.now() };
}

export interface CpuUse {
  /** Share of all cores busy (anything on the machine) between the two marks. */
  machineBusyPercent: number;
  /** CPU time of this process (the bench and every in-process client library), in core-milliseconds. */
  processCoreMs: number;
  /** Busy core-milliseconds of the whole machine. */
  machineCoreMs: number;
}

/**
 * What happened between two marks. The machine figure includes PostgreSQL and anything else running: on a
 * shared machine it shows how disturbed a measurement was.
 */
export function cpuSince(start: CpuMark, end: CpuMark = cpuMark()): CpuUse {
  const busy = end.machine.busy - start.machine.busy;
  const total = end.machine.total - start.machine.total;
  const p = process.cpuUsage(start.process);
  return {
    machineBusyPercent: total > 0 ? Math.round((busy / total) * 100) : 0,
    processCoreMs: Math.round((p.user + p.system) / 1000),
    machineCoreMs: Math.round(busy),
  };
}
