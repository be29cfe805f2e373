import { readFileSync } from 'node:fs';
import { machineCpuMs } from './cpu.js';

/**
 * Where the CPU of a run went, sampled over time: this process (every thread: the main thread, worker
 * threads, native threads such as libvips' and libuv's), its main thread alone, and the whole machine. The
 * machine figure is what tells a clean measurement from one that shared the cores with something else.
 */

/** Clock ticks per second of /proc/<pid>/task/<tid>/stat; 100 on every Linux this runs on. */
const CLK_TCK = 100;

interface MachineTimes {
  /** Core-milliseconds spent busy (user, nice, system, irq, softirq) since boot. */
  busyMs: number;
  /** Core-milliseconds stolen by the hypervisor, where it reports them. */
  stealMs: number;
  totalMs: number;
}

/** Whole-machine CPU times: /proc/stat where there is one (it has steal time), os.cpus() elsewhere. */
function machineTimes(): MachineTimes {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    // cpu  user nice system idle iowait irq softirq steal guest guest_nice (clock ticks)
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line
      .trim()
      .split(/\s+/)
      .slice(1, 9)
      .map((v) => (Number(v) * 1000) / CLK_TCK);
    const busyMs = user! + nice! + system! + irq! + softirq!;
    return { busyMs, stealMs: steal ?? 0, totalMs: busyMs + idle! + iowait! + (steal ?? 0) };
  } catch {
    const { busy, total } = machineCpuMs();
    return { busyMs: busy, stealMs: 0, totalMs: total };
  }
}

/** CPU milliseconds of this process's main thread (its thread id is the process id), or undefined off Linux. */
function mainThreadMs(): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return undefined;
  }
}

export interface CpuSample {
  /** performance.now() */
  at: number;
  /** process.cpuUsage(), user + system, in ms: every thread of the process. */
  processMs: number;
  mainThreadMs: number | undefined;
  machine: MachineTimes;
}

export function cpuSample(): CpuSample {
  const u = process.cpuUsage();
  return {
    at: performance.now(),
    processMs: (u.user + u.system) / 1000,
    mainThreadMs: mainThreadMs(),
    machine: machineTimes(),
  };
}

export interface CpuWindow {
  wallMs: number;
  /** CPU time of the whole process between the two samples, in core-milliseconds. */
  processMs: number;
  /** processMs / (wallMs × cores), in percent. */
  processPercentOfCores: number;
  /** CPU time of the main thread (scheduling, the store's commits, result handling), if known. */
  mainThreadMs: number | undefined;
  /** mainThreadMs / wallMs, in percent of one core. */
  mainThreadPercentOfOneCore: number | undefined;
  /** Share of all the machine's cores busy with anything. */
  machineBusyPercent: number;
  /** Busy core-milliseconds of other processes: the machine's busy time minus this process's. */
  othersMs: number;
  /** othersMs over the machine's capacity in the window, in percent. */
  othersPercentOfMachine: number;
  /** Time the hypervisor gave to other guests, in percent of the machine's capacity. */
  stealPercentOfMachine: number;
}

/** What happened between two samples, for a node given `cores` cores. */
export function cpuWindow(a: CpuSample, b: CpuSample, cores: number): CpuWindow {
  const wallMs = b.at - a.at;
  const processMs = b.processMs - a.processMs;
  const main =
    a.mainThreadMs !== undefined && b.mainThreadMs !== undefined
      ? b.mainThreadMs - a.mainThreadMs
      : undefined;
  const busy = b.machine.busyMs - a.machine.busyMs;
  const total = b.machine.totalMs - a.machine.totalMs;
  const steal = b.machine.stealMs - a.machine.stealMs;
  const pct = (x: number, of: number): number => (of > 0 ? Number(((x / of) * 100).toFixed(2)) : 0);
  // /proc/stat ticks and cpuUsage() are sampled at slightly different instants: never below zero.
  const othersMs = Math.max(0, busy - processMs);
  return {
    wallMs: Number(wallMs.toFixed(1)),
    processMs: Math.round(processMs),
    processPercentOfCores: pct(processMs, wallMs * cores),
    mainThreadMs: main === undefined ? undefined : Math.round(main),
    mainThreadPercentOfOneCore: main === undefined ? undefined : pct(main, wallMs),
    machineBusyPercent: pct(busy, total),
    othersMs: Math.round(othersMs),
    othersPercentOfMachine: pct(othersMs, total),
    stealPercentOfMachine: pct(steal, total),
  };
}

/**
 * Takes a sample every `intervalMs` until stopped, for a timeline of the run: ramp-up, gaps and the tail
 * show up there, where a single average hides them. Sampling reads two small /proc files: negligible.
 */
export class CpuSampler {
  readonly samples: CpuSample[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly intervalMs = 1_000) {}

  start(): CpuSample {
    const first = cpuSample();
    this.samples.push(first);
    this.timer = setInterval(() => this.samples.push(cpuSample()), this.intervalMs);
    this.timer.unref();
    return first;
  }

  stop(): CpuSample {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const last = cpuSample();
    this.samples.push(last);
    return last;
  }

  /** One row per interval: seconds since the start, this process's and the other processes' share. */
  timeline(cores: number): { t: number; process: number; mainThread?: number; others: number }[] {
    const first = this.samples[0];
    if (!first) return [];
    return this.samples.slice(1).map((s, i) => {
      const w = cpuWindow(this.samples[i]!, s, cores);
      return {
        t: Number(((s.at - first.at) / 1000).toFixed(1)),
        process: w.processPercentOfCores,
        ...(w.mainThreadPercentOfOneCore !== undefined && { mainThread: w.mainThreadPercentOfOneCore }),
        others: w.othersPercentOfMachine,
      };
    });
  }
}
