import type { FastifyInstance } from 'fastify';
import type { Execution } from '../workflow/execution.js';
import { executionSummary } from './views.js';

/** How often changed executions are pushed to subscribers: often enough to look live, rarely enough to batch. */
const FLUSH_MS = 250;
/** A comment line keeps proxies and browsers from closing an idle stream. */
const KEEPALIVE_MS = 15_000;
/** Past this many changes in one flush, subscribers get `reload` instead of the list. */
const MAX_CHANGES = 200;

type Subscriber = (event: string, data: unknown) => void;

/**
 * Live updates for the UI (SSE): every step this node's engine commits marks its execution changed, and the
 * changes are pushed in batches. With nobody subscribed, a commit costs one map lookup. An installation of
 * several nodes sees the steps of its own engine live; the UI also refreshes on a slow timer for the rest.
 */
export class LiveFeed {
  private readonly subscribers = new Set<Subscriber>();
  private changed = new Map<string, Execution>();
  private timer: NodeJS.Timeout | undefined;

  committed(x: Execution): void {
    if (this.subscribers.size === 0) return;
    this.changed.set(x.id, x);
    this.timer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  subscribe(s: Subscriber): () => void {
    this.subscribers.add(s);
    return () => this.subscribers.delete(s);
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.subscribers.clear();
  }

  private flush(): void {
    this.timer = undefined;
    const changed = [...this.changed.values()];
    this.changed = new Map();
    const data =
      changed.length > MAX_CHANGES
        ? { reload: true }
        : { executions: changed.map((x) => executionSummary(x)) };
    for (const s of this.subscribers) s('executions', data);
  }
}

/** `GET /v1/live`: a server-sent event stream of `executions` changes. */
export function liveRoutes(app: FastifyInstance, feed: LiveFeed): void {
  const open = new Set<() => void>();
  // Before the server closes: it waits for open connections, and a stream never ends by itself.
  app.addHook('preClose', (done) => {
    for (const end of open) end();
    done();
  });
  app.get('/v1/live', (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`retry: 2000\n: connected\n\n`);
    const unsubscribe = feed.subscribe((event, data) => {
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    });
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
    keepalive.unref();
    const end = (): void => {
      clearInterval(keepalive);
      unsubscribe();
      open.delete(end);
      if (!res.writableEnded) res.end();
    };
    open.add(end);
    req.raw.on('close', end);
  });
}
