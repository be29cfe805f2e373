import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import sharp from 'sharp';
import { FunctionRuntime, type InvocationResult } from '../src/functions/runtime.js';
import { Queue } from '../src/queue/queue.js';
import { openStore } from '../src/store/open.js';
import { encodeFrame, type EncodedFrame, type FrameSpec } from './functions/avif.js';
import { intOption } from './lib/args.js';
import { Cleanup } from './lib/cleanup.js';
import { guardRun } from './lib/guard.js';
import { cpuSample, CpuSampler, cpuWindow, type CpuSample, type CpuWindow } from './lib/cpu-sampler.js';
import { machineInfo } from './lib/machine.js';
import { Progress } from './lib/progress.js';
import { Report } from './lib/report.js';
import { quantile, summarize } from './lib/stats.js';
import { within } from './lib/wait.js';

const USAGE = `usage: npm run bench -- compute [options]
  --cores <n>     cores the node is given: its slots and warm workers (default: os.availableParallelism())
  --frames <n>    frames in the timed run (default: as many as take about --seconds)
  --seconds <n>   target length of the timed run when --frames is not given (default 20)
  --width <px>    frame width (default 640)
  --height <px>   frame height (default 360)
  --effort <n>    libaom effort 0-9 (default 3)
  --quality <n>   AVIF quality 1-100 (default 50)
  --no-raw        skip the baseline: the same frames on plain worker_threads, without Cosmos`;

/** The whole benchmark must end, and clean up, even when a worker hangs. */
const DEADLINE_MS = 10 * 60_000;
/** libuv's default thread pool size: every sharp call of the process, in any worker thread, runs on it. */
const UV_DEFAULT_POOL = 4;
const REEXEC_MARK = 'COSMOS_BENCH_COMPUTE_CHILD';

interface Settings {
  cores: number;
  frames: number | undefined;
  seconds: number;
  width: number;
  height: number;
  effort: number;
  quality: number;
  /** Untimed rounds of one frame per core before the clock starts: loads sharp in every worker. */
  warmupRounds: number;
  /** Also run the frames on bare worker_threads, the ceiling this workload reaches on this machine. */
  raw: boolean;
}

function parseSettings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      cores: { type: 'string' },
      frames: { type: 'string' },
      seconds: { type: 'string' },
      width: { type: 'string' },
      height: { type: 'string' },
      effort: { type: 'string' },
      quality: { type: 'string' },
      'no-raw': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const int = intOption;
  return {
    cores: int(values.cores, availableParallelism(), 'cores'),
    frames: values.frames === undefined ? undefined : int(values.frames, 0, 'frames'),
    seconds: int(values.seconds, 20, 'seconds'),
    width: int(values.width, 640, 'width', 16, 3840),
    height: int(values.height, 360, 'height', 16, 2160),
    effort: int(values.effort, 3, 'effort', 0, 9),
    quality: int(values.quality, 50, 'quality', 1, 100),
    warmupRounds: 2,
    raw: !values['no-raw'],
  };
}

export async function main(argv: string[]): Promise<void> {
  const settings = parseSettings(argv);
  // sharp runs every call on libuv's thread pool, which all worker threads of a process share and which is
  // sized once, when the process first uses it (long before this module loads). A node with more cores than
  // the pool has threads could never run more encodes at once than the pool size, so the benchmark runs
  // itself again with a pool that fits.
  const uvPool = Number(process.env.UV_THREADPOOL_SIZE) || UV_DEFAULT_POOL;
  if (uvPool < settings.cores && process.env[REEXEC_MARK] === undefined) {
    process.stderr.write(
      `[bench] libuv's thread pool has ${uvPool} threads for ${settings.cores} cores: ` +
        `running again with UV_THREADPOOL_SIZE=${settings.cores}\n`,
    );
    process.exitCode = await reexec({ UV_THREADPOOL_SIZE: String(settings.cores), [REEXEC_MARK]: '1' });
    return;
  }

  const report = new Report();
  const progress = new Progress();
  const cleanup = new Cleanup();
  const disarm = guardRun(progress, cleanup, DEADLINE_MS);
  const started = new Date();

  try {
    const run = await measure(settings, progress, cleanup);
    const { cpu, frames, outputs } = run;
    const cores = settings.cores;
    const wallS = cpu.wallMs / 1000;
    const encodeMs = outputs.map((o) => o.encodeMs);
    const renderMs = outputs.map((o) => o.renderMs);
    const handlerMs = outputs.map((o) => o.endedAt - o.startedAt);
    const time = coreTime(run, cores);
    report.metric('cpu_utilisation', cpu.processPercentOfCores, '%');
    report.metric('frames_per_second', frames / wallS, 'frames/s');
    report.metric('encode_ms_p50', quantile(encodeMs, 0.5), 'ms');
    report.metric('render_ms_p50', quantile(renderMs, 0.5), 'ms');
    report.metric('slot_occupancy', time.handlers, '%');
    if (cpu.mainThreadPercentOfOneCore !== undefined)
      report.metric('main_thread_cpu', cpu.mainThreadPercentOfOneCore, '% of one core');

    const m = machineInfo();
    const v = sharp.versions;
    report.note(
      `machine: ${m.cpuModel}, ${m.cpus} cores (node given ${cores}), ${m.memoryGiB} GiB, ` +
        `${m.platform}, Node ${m.node}`,
    );
    report.note(
      `work: ${frames} frames of ${settings.width}x${settings.height}, SVG rendered by librsvg then AVIF ` +
        `(quality ${settings.quality}, effort ${settings.effort}) by sharp ${v.sharp} / libvips ${v.vips} / ` +
        `libaom ${v.aom ?? '?'}, one libvips thread per invocation`,
    );
    report.note(
      `run: ${cores} slots and ${cores} warm worker threads in pool "compute" on the embedded SQLite store; ` +
        `clock from the first invocation enqueued to the last result committed: ${wallS.toFixed(1)} s`,
    );
    report.note(
      `cpu_utilisation = CPU time of this process, every thread (${cpu.processMs} ms), / ` +
        `(wall ${cpu.wallMs.toFixed(0)} ms × ${cores} cores)`,
    );
    report.note(
      `the cores' time: handlers running ${time.handlers.toFixed(1)}% (their threads on a core ` +
        `${time.cpuWhileRunning.toFixed(1)}% of it), idle between frames ${time.between.toFixed(2)}% ` +
        `(median gap ${time.gapMs.p50.toFixed(2)} ms), idle at the start and end ${time.edges.toFixed(2)}%; ` +
        `main thread ${cpu.mainThreadPercentOfOneCore ?? '?'}% of one core, event loop busy ` +
        `${run.mainLoopBusy.toFixed(1)}%`,
    );
    if (cpu.othersPercentOfMachine >= 3 || cpu.stealPercentOfMachine >= 3)
      report.note(
        `other processes were busy on ${cpu.othersPercentOfMachine}% of the machine's cores during the run` +
          (cpu.stealPercentOfMachine > 0 ? ` (steal ${cpu.stealPercentOfMachine}%)` : '') +
          ': the figure may be low because of them; re-run on a quiet machine',
      );

    if (settings.raw) {
      const raw = await rawWorkers(settings, run, progress);
      report.metric('cpu_utilisation_raw_worker_threads', raw.cpu.processPercentOfCores, '%');
      report.metric('frames_per_second_raw_worker_threads', frames / (raw.cpu.wallMs / 1000), 'frames/s');
      report.ratio(
        'cpu_utilisation_vs_raw_worker_threads',
        cpu.processPercentOfCores / raw.cpu.processPercentOfCores,
      );
      report.note(
        `baseline: the same ${frames} frames on ${cores} bare worker_threads calling the handler (one frame per ` +
          `postMessage round trip, no queue, no scheduler): ${raw.cpu.processPercentOfCores}% in ` +
          `${(raw.cpu.wallMs / 1000).toFixed(1)} s, other processes ${raw.cpu.othersPercentOfMachine}%`,
      );
      const rawTime = coreTime(raw, cores);
      report.note(
        `baseline cores' time: handlers running ${rawTime.handlers.toFixed(1)}% (on a core ` +
          `${rawTime.cpuWhileRunning.toFixed(1)}% of it), idle between frames ${rawTime.between.toFixed(2)}% ` +
          `(median gap ${rawTime.gapMs.p50.toFixed(2)} ms), idle at the start and end ${rawTime.edges.toFixed(2)}%`,
      );
      report.detail('raw', {
        cpu: raw.cpu,
        coreTime: rawTime,
        timeline: raw.timeline,
        encodeMs: summarize(raw.outputs.map((o) => o.encodeMs)),
      });
    }
    report.detail('cpu', cpu);
    report.detail('timeline', run.timeline);
    report.detail('handler', {
      encodeMs: summarize(encodeMs),
      renderMs: summarize(renderMs),
      handlerMs: summarize(handlerMs),
      avifBytes: summarize(outputs.map((o) => o.bytes)),
    });
    report.detail('coreTime', time);
    report.detail('mainEventLoopBusyPercent', run.mainLoopBusy);
    report.detail('calibration', run.calibration);
    report.detail('workers', run.poolStats);
    report.detail('sharp', v);
    const resultsPath = fileURLToPath(new URL('./results/compute.json', import.meta.url));
    report.write(resultsPath, {
      benchmark: 'compute',
      args: argv,
      date: started.toISOString(),
      durationSeconds: Number(((Date.now() - started.getTime()) / 1000).toFixed(1)),
      machine: m,
      settings: { ...settings, frames },
      method: {
        function: 'bench/functions/avif.ts encodeFrame: pool compute, shape {cpu: 1, memoryMb: 512}',
        runtime: `FunctionRuntime, capacity ${cores}, warm {compute: ${cores}}, embedded SQLite store (temp file)`,
        clock:
          'after warm-up: from just before the first timed invoke() to the result event of the last frame (its completion committed)',
        cpuUtilisation:
          'process.cpuUsage() (all threads: main, workers, libvips, libuv) over the clock, / (wall × cores)',
        slotOccupancy: 'sum of handler durations (measured in the worker) / (wall × cores)',
        coreTime:
          'per worker thread: handler time, gaps between one frame and the next, idle before the first and after the last, as shares of wall × cores',
      },
    });
    progress.info(`results written to ${resultsPath}`);
  } finally {
    await cleanup.runAll();
    disarm();
  }
}

interface Measured {
  frames: number;
  cpu: CpuWindow;
  outputs: EncodedFrame[];
  timeline: ReturnType<CpuSampler['timeline']>;
  /** Epoch ms (with fractions) of the clock's start and end. */
  clock: { from: number; to: number };
  /** Share of the clock the main thread's event loop was busy (scheduling, commits, result events). */
  mainLoopBusy: number;
  calibration: { perFrameMs: number; frames: number; verified: Record<string, unknown> };
  poolStats: ReturnType<FunctionRuntime['poolStats']>;
  /** The bundle the runtime's workers loaded, for the baseline. */
  bundle: string;
  /** The next unused frame number. */
  nextFrame: number;
}

async function measure(s: Settings, progress: Progress, cleanup: Cleanup): Promise<Measured> {
  const dir = mkdtempSync(join(tmpdir(), 'cosmos-bench-compute-'));
  cleanup.add(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  // The bundle imports sharp from node_modules (native code is never bundled), so it must live under the
  // project: a bundle in /tmp could not resolve it.
  const root = fileURLToPath(new URL('..', import.meta.url));
  mkdirSync(join(root, '.cosmos'), { recursive: true });
  const bundleDir = mkdtempSync(join(root, '.cosmos', 'bench-compute-'));
  cleanup.add(`remove ${bundleDir}`, () => rmSync(bundleDir, { recursive: true, force: true }));

  const store = await openStore({ kind: 'sqlite', path: join(dir, 'cosmos.db') });
  const closeStore = cleanup.add('close store', () => store.close());
  const queue = new Queue(store);
  const runtime = new FunctionRuntime(queue, {
    capacity: s.cores,
    warm: { compute: s.cores },
    bundleDir,
  });
  const stop = cleanup.add('stop runtime', async () => {
    await runtime.stop();
    await queue.close();
  });
  await runtime.register('encodeFrame', encodeFrame, {
    module: fileURLToPath(new URL('./functions/avif.ts', import.meta.url)),
  });

  // Results by message id; a result can arrive before invoke() has returned the id.
  const waiting = new Map<number, (r: InvocationResult) => void>();
  const early = new Map<number, InvocationResult>();
  let onAny: ((r: InvocationResult) => void) | undefined;
  runtime.onResult((r) => {
    onAny?.(r);
    const take = waiting.get(r.messageId);
    if (take) {
      waiting.delete(r.messageId);
      take(r);
    } else early.set(r.messageId, r);
  });
  const invoke = async (spec: FrameSpec): Promise<EncodedFrame> => {
    const { id } = await runtime.invoke('encodeFrame', spec);
    const r = early.get(id) ?? (await new Promise<InvocationResult>((resolve) => waiting.set(id, resolve)));
    early.delete(id);
    if (!r.ok) throw new Error(`frame ${spec.frame} failed: ${r.error?.message ?? 'unknown error'}`);
    return r.output as EncodedFrame;
  };
  const frame = (n: number, keep = false): FrameSpec => ({
    frame: n,
    width: s.width,
    height: s.height,
    effort: s.effort,
    quality: s.quality,
    keep,
  });

  progress.start(`starting ${s.cores} warm workers`);
  await runtime.start();
  const live = runtime.poolStats()['thread:compute']?.live ?? 0;
  progress.done(`${live} live`);
  if (live < s.cores) throw new Error(`the runtime started ${live} workers for ${s.cores} cores`);

  // Warm-up, untimed: every worker loads the bundle and sharp; the last round calibrates the run's length,
  // and one frame comes back whole to prove the bytes are an AVIF image of the right size.
  progress.start(`warm-up: ${s.warmupRounds} rounds of ${s.cores} frames`);
  let last: EncodedFrame[] = [];
  let n = 0;
  for (let round = 0; round < s.warmupRounds; round++) {
    const specs = Array.from({ length: s.cores }, () => frame(n++));
    last = await within(Promise.all(specs.map(invoke)), 120_000, 'warm-up');
  }
  const sample = await invoke(frame(n++, true));
  const meta = await sharp(Buffer.from(sample.avif!, 'base64')).metadata();
  const verified = {
    format: meta.format,
    compression: meta.compression,
    width: meta.width,
    height: meta.height,
    bytes: sample.bytes,
  };
  if (
    meta.format !== 'heif' ||
    meta.compression !== 'av1' ||
    meta.width !== s.width ||
    meta.height !== s.height
  )
    throw new Error(
      `the function's output is not a ${s.width}x${s.height} AVIF: ${JSON.stringify(verified)}`,
    );
  const perFrameMs = quantile(
    last.map((o) => o.endedAt - o.startedAt),
    0.5,
  );
  const frames =
    s.frames ??
    Math.max(8 * s.cores, Math.ceil((s.seconds * 1000 * s.cores) / perFrameMs / s.cores) * s.cores);
  progress.done(`${perFrameMs.toFixed(0)} ms a frame; AVIF verified (${sample.bytes} bytes)`);

  // The timed run: every frame enqueued through invoke() as the clock starts, the clock stops at the result
  // event of the last one. Progress is drawn from the result events; off a terminal, at each quarter.
  const outputs: EncodedFrame[] = [];
  let failure: Error | undefined;
  let end: CpuSample | undefined;
  const tty = process.stderr.isTTY;
  let quarter = 1;
  const finished = new Promise<void>((resolve) => {
    onAny = (r) => {
      if (!r.ok) failure ??= new Error(`a frame failed: ${r.error?.message ?? 'unknown error'}`);
      else outputs.push(r.output as EncodedFrame);
      const done = outputs.length + (failure ? 1 : 0);
      if (done >= frames || failure) {
        end ??= cpuSample();
        resolve();
      }
      progress.update(`${outputs.length}/${frames} frames`);
      if (!tty && quarter < 4 && outputs.length >= (frames * quarter) / 4) {
        progress.info(`${outputs.length}/${frames} frames`);
        quarter++;
      }
    };
  });
  const sampler = new CpuSampler(1_000);
  progress.start(`encoding ${frames} frames on ${s.cores} cores`);
  const start = sampler.start();
  const elu = performance.eventLoopUtilization();
  // In chunks, so the store's group commit takes many at once and the first frames start at once.
  for (let i = 0; i < frames; i += 100)
    await Promise.all(
      Array.from({ length: Math.min(100, frames - i) }, (_, k) =>
        runtime.invoke('encodeFrame', frame(n + i + k)),
      ),
    );
  await within(finished, Math.max(120_000, frames * perFrameMs * 10), 'timed run');
  sampler.stop();
  if (failure) throw failure;
  const cpu = cpuWindow(start, end!, s.cores);
  const mainLoopBusy = performance.eventLoopUtilization(elu).utilization * 100;
  progress.done(`${frames} frames, ${(frames / (cpu.wallMs / 1000)).toFixed(1)} frames/s`);
  const poolStats = runtime.poolStats();
  const bundle = runtime.registry.get('encodeFrame')!.ref.module;
  await stop();
  await closeStore();
  return {
    bundle,
    nextFrame: n + frames,
    frames,
    cpu,
    outputs,
    timeline: sampler.timeline(s.cores),
    clock: { from: performance.timeOrigin + start.at, to: performance.timeOrigin + end!.at },
    mainLoopBusy,
    calibration: { perFrameMs: Number(perFrameMs.toFixed(1)), frames, verified },
    poolStats,
  };
}

/** Runs in each baseline worker: loads the bundle, encodes a warm-up frame, then one frame per message. */
const RAW_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { pathToFileURL } = require('node:url');
import(pathToFileURL(workerData.module).href).then(async ({ encodeFrame }) => {
  const run = (frame) => encodeFrame.handler(encodeFrame.input.parse({ ...workerData.spec, frame }), {});
  await run(workerData.warmup);
  parentPort.on('message', (frame) => {
    run(frame).then((out) => parentPort.postMessage(out), (e) => parentPort.postMessage({ error: String(e) }));
  });
  parentPort.postMessage('ready');
});`;

/**
 * The ceiling: the same handler on the same frames, run by `cores` bare worker threads that each take the
 * next frame as soon as they answer the last. No queue, no store, no scheduler: what this workload itself
 * reaches on this machine, so the Cosmos figure can be read against it.
 */
async function rawWorkers(
  s: Settings,
  run: Measured,
  progress: Progress,
): Promise<Pick<Measured, 'clock' | 'outputs' | 'cpu' | 'timeline'>> {
  progress.start(`baseline: ${run.frames} frames on ${s.cores} bare worker_threads`);
  const spec = { width: s.width, height: s.height, effort: s.effort, quality: s.quality };
  const workers = Array.from(
    { length: s.cores },
    (_, i) =>
      new Worker(RAW_WORKER, {
        eval: true,
        workerData: { module: run.bundle, spec, warmup: run.nextFrame + run.frames + i },
      }),
  );
  try {
    await within(
      Promise.all(
        workers.map(
          (w) =>
            new Promise<void>((resolve, reject) => {
              w.once('message', () => resolve());
              w.once('error', reject);
            }),
        ),
      ),
      60_000,
      'baseline warm-up',
    );
    const outputs: EncodedFrame[] = [];
    let next = 0;
    let end: CpuSample | undefined;
    const sampler = new CpuSampler(1_000);
    const done = new Promise<void>((resolve, reject) => {
      for (const w of workers) {
        w.on('message', (m: EncodedFrame | { error: string }) => {
          if ('error' in m) return reject(new Error(`baseline frame failed: ${m.error}`));
          outputs.push(m);
          progress.update(`${outputs.length}/${run.frames} frames`);
          if (outputs.length === run.frames) {
            end = cpuSample();
            resolve();
          } else if (next < run.frames) w.postMessage(run.nextFrame + next++);
        });
        w.once('error', reject);
      }
    });
    const start = sampler.start();
    for (const w of workers) if (next < run.frames) w.postMessage(run.nextFrame + next++);
    await within(done, Math.max(120_000, run.frames * run.calibration.perFrameMs * 10), 'baseline');
    sampler.stop();
    const cpu = cpuWindow(start, end!, s.cores);
    progress.done(`${cpu.processPercentOfCores}% of ${s.cores} cores`);
    return {
      cpu,
      outputs,
      timeline: sampler.timeline(s.cores),
      clock: { from: performance.timeOrigin + start.at, to: performance.timeOrigin + end!.at },
    };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

interface CoreTime {
  /** Shares of wall × cores, in percent. */
  handlers: number;
  between: number;
  edges: number;
  /** CPU of every thread but the main one, over the handlers' running time, in percent. */
  cpuWhileRunning: number;
  gapMs: ReturnType<typeof summarize>;
  /** Per worker thread: frames, and idle ms before its first frame and after its last. */
  threads: { thread: number; frames: number; leadMs: number; tailMs: number }[];
}

/**
 * Where the cores' time went, from the handlers' own start and end times: running a frame, waiting between
 * two frames on the same thread (dispatch: the result to the main thread, the next run to the worker), or
 * idle before the first frame and after the last (enqueue and fetch at the start, the last frames at the end).
 */
function coreTime(run: Pick<Measured, 'clock' | 'outputs' | 'cpu'>, cores: number): CoreTime {
  const wall = run.clock.to - run.clock.from;
  const byThread = new Map<number, EncodedFrame[]>();
  for (const o of run.outputs) byThread.set(o.thread, [...(byThread.get(o.thread) ?? []), o]);
  let handlers = 0;
  let edges = 0;
  const gaps: number[] = [];
  const threads: CoreTime['threads'] = [];
  for (const [thread, list] of byThread) {
    list.sort((a, b) => a.startedAt - b.startedAt);
    for (let i = 0; i < list.length; i++) {
      handlers += list[i]!.endedAt - list[i]!.startedAt;
      if (i > 0) gaps.push(list[i]!.startedAt - list[i - 1]!.endedAt);
    }
    const leadMs = list[0]!.startedAt - run.clock.from;
    const tailMs = run.clock.to - list[list.length - 1]!.endedAt;
    edges += leadMs + tailMs;
    threads.push({ thread, frames: list.length, leadMs: round(leadMs), tailMs: round(tailMs) });
  }
  // A core that no thread used at all was idle for the whole run.
  edges += Math.max(0, cores - byThread.size) * wall;
  const of = (ms: number): number => (ms / (wall * cores)) * 100;
  const workersMs = run.cpu.processMs - (run.cpu.mainThreadMs ?? 0);
  return {
    handlers: of(handlers),
    between: of(gaps.reduce((a, b) => a + b, 0)),
    edges: of(edges),
    cpuWhileRunning: (workersMs / handlers) * 100,
    gapMs: summarize(gaps.length > 0 ? gaps : [0]),
    threads,
  };
}

const round = (x: number): number => Number(x.toFixed(1));

/** Runs this benchmark again in a child process with `env` added; resolves to its exit code. */
function reexec(env: Record<string, string>): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, ...env },
  });
  // Ctrl-C reaches the child too (same process group) and it cleans up; a SIGTERM is passed on.
  const ignore = (): void => undefined;
  const pass = (): void => void child.kill('SIGTERM');
  process.on('SIGINT', ignore);
  process.on('SIGTERM', pass);
  return new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      process.off('SIGINT', ignore);
      process.off('SIGTERM', pass);
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}
