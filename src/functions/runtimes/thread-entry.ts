import { parentPort } from 'node:worker_threads';
import { createRunner } from '../runner-core.js';
import {
  RUN_MANY,
  type CompactOk,
  type CompactRun,
  type CompactRunMany,
  type FromRunner,
  type ManyAnswers,
  type ToRunner,
} from '../protocol.js';

// A worker thread: one runner, many invocations (several may be in flight when handlers await).
const port = parentPort;
if (!port) throw new Error('thread-entry runs inside a worker thread');
// Answers ready in the same turn leave together (see RUN_MANY).
let outgoing: (FromRunner | CompactOk)[] = [];
const flush = (): void => {
  const batch = outgoing;
  outgoing = [];
  port.postMessage(batch.length === 1 ? batch[0] : ({ many: batch } satisfies ManyAnswers));
};
const handle = createRunner(
  (m) => {
    if (outgoing.push(m) === 1) queueMicrotask(flush);
  },
  { compact: true },
);
port.on('message', (m: ToRunner | CompactRun | CompactRunMany) => {
  if (Array.isArray(m)) {
    if (m[0] === RUN_MANY) for (const r of m[1]) handle(r);
    else handle(m);
  } else if (m.t === 'shutdown') port.close();
  else handle(m);
});
port.postMessage({ t: 'ready' } satisfies FromRunner);
