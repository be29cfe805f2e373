import { createRunner } from '../runner-core.js';
import type { CompactOk, FromRunner, ToRunner } from '../protocol.js';

// A sandboxed child process: one runner over the IPC channel, several invocations in flight when handlers await.
// The parent owns this process's life: when the channel goes (parent closed the runner, or died), so does it.
const send = (m: FromRunner | CompactOk): void => {
  // A handler may still answer after the parent disconnected; there is nobody left to tell.
  if (process.connected) process.send?.(m);
};
if (!process.send) throw new Error('sandbox-entry runs in a child process forked with an IPC channel');

const handle = createRunner(send);
process.on('message', (m: ToRunner) => {
  if (m.t === 'shutdown') process.disconnect();
  else handle(m);
});
process.on('disconnect', () => process.exit(0));
send({ t: 'ready' });
