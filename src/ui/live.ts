import { useEffect, useRef, useState } from 'react';
import type { ExecutionSummary } from './api.js';

export type LiveMessage = { executions: ExecutionSummary[] } | { reload: true };

/**
 * Subscribes to the platform's live stream (`/v1/live`, server-sent events). The browser reconnects by
 * itself; `connected` says whether updates are flowing.
 */
export function useLive(onMessage: (m: LiveMessage) => void, enabled = true): { connected: boolean } {
  const handler = useRef(onMessage);
  handler.current = onMessage;
  const [connected, setConnected] = useState(false);
  useEffect(() => {
    if (!enabled) return;
    const source = new EventSource('/v1/live');
    source.onopen = () => setConnected(true);
    source.onerror = () => setConnected(false);
    source.addEventListener('executions', (e) =>
      handler.current(JSON.parse((e as MessageEvent<string>).data) as LiveMessage),
    );
    return () => {
      source.close();
      setConnected(false);
    };
  }, [enabled]);
  return { connected };
}

/** Calls `load` now, every `ms`, and when `live` says so; returns what it loaded last. */
export function usePolled<T>(
  load: () => Promise<T>,
  ms: number,
  deps: unknown[],
): {
  data: T | undefined;
  error: Error | undefined;
  reload: () => void;
} {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<Error>();
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let alive = true;
    load().then(
      (d) => {
        if (!alive) return;
        setData(d);
        setError(undefined);
      },
      (e: unknown) => alive && setError(e instanceof Error ? e : new Error(String(e))),
    );
    const t = setTimeout(() => setTick((n) => n + 1), ms);
    return () => {
      alive = false;
      clearTimeout(t);
    };
  }, [...deps, tick]);
  return { data, error, reload: () => setTick((n) => n + 1) };
}
