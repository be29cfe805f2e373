// The peers' worker: answers every message with itself (raw worker_threads) or returns its task (piscina).
import { isMainThread, parentPort, workerData } from 'node:worker_threads';

if (!isMainThread && workerData === 'raw') parentPort.on('message', (m) => parentPort.postMessage(m));

export default function echo(task) {
  return task;
}
