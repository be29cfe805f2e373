import { parentPort } from 'node:worker_threads';
import { createRunner } from '../runner-core.js';
import type { CompactRun, FromRunner, ToRunner } from '../protocol.js';

// A worker thread: one runner, many invocations (several may be in flight when handlers await).
const port = parentPort;
if (!port) throw new Error('thread-entry runs inside a worker thread');
const handle = createRunner((m) => port.postMessage(m), { compact: true });
port.on('message', (m: ToRunner | CompactRun) => {
  if (!Array.isArray(m) && m.t === 'shutdown') port.close();
  else handle(m);
});
port.postMessage({ t: 'ready' } satisfies FromRunner);
