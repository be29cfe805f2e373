import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Thread placement for round-trip benchmarks. On a VM, where the kernel puts a worker thread decides a
 * postMessage round trip more than any code on the path does: a worker it packs onto the main thread's CPU
 * answers in about 20 µs (a context switch), one on another CPU in about 50 µs (an idle vCPU has to be woken
 * through the hypervisor), and the choice is made per thread and sticks for seconds. Comparing two systems
 * whose workers drew different placements compares the draws. Pinning the main thread to one CPU and every
 * worker to another gives all of them the placement a busy node gives its workers.
 */

/** CPU time of each thread of this process so far, in ns, by thread id. */
export function threadTimes(): Map<number, number> {
  const times = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const ns = Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      times.set(Number(tid), ns);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return times;
}

/** The thread other than the main one that ran longest since `before` (a worker doing a warm-up). */
export function busiestThread(before: Map<number, number>): number | undefined {
  let best: number | undefined;
  let most = 0;
  for (const [tid, ns] of threadTimes()) {
    if (tid === process.pid) continue;
    const ran = ns - (before.get(tid) ?? 0);
    if (ran > most) [best, most] = [tid, ran];
  }
  return best;
}

/** The CPUs this process may run on, from the kernel's list. */
export function allowedCpus(): number[] {
  return parseCpuList(
    /^Cpus_allowed_list:\s*(\S+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '',
  );
}

/** A kernel CPU list (`0-3,6`) as numbers; nothing for text that is not one. */
export function parseCpuList(list: string): number[] {
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(list)) return [];
  return list.split(',').flatMap((part) => {
    const [a, b = a] = part.split('-').map(Number) as [number, number?];
    return Array.from({ length: Math.max(0, b - a + 1) }, (_, i) => a + i);
  });
}

/** Why threads cannot be pinned here, or undefined when they can. */
export function cannotPin(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (allowedCpus().length < 2) return 'fewer than two CPUs';
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'taskset (util-linux) is not installed';
  }
  return undefined;
}

/** Restricts one thread (not its whole process) to the given CPUs. */
export function pinThread(tid: number, cpus: number[]): void {
  execFileSync('taskset', ['-p', '-c', cpus.join(','), String(tid)], { stdio: 'ignore' });
}
