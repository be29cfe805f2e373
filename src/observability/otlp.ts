import { createHash } from 'node:crypto';
import { SpanKind, SpanStatusCode, TraceFlags, type Attributes, type HrTime } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Store } from '../store/store.js';
import type { Execution } from '../workflow/execution.js';
import type { Logger } from './logger.js';
import { spansOf, type Span } from './spans.js';
import { traceTree } from './trace-tree.js';

/** Where traces go over OTLP/HTTP (from the standard OTEL_* variables, see env.ts). */
export interface OtlpOptions {
  /** The traces URL, e.g. http://collector:4318/v1/traces */
  url: string;
  headers?: Record<string, string>;
  /** service.name of spans that belong to no service (default "cosmos"). */
  serviceName?: string;
}

const SCOPE = { name: 'cosmos-platform', version: '0.1.0' };

/** Ids derived from ours, so the same request exports to the same trace id wherever and whenever it is sent. */
const hexOf = (text: string, chars: number): string =>
  createHash('sha256').update(text).digest('hex').slice(0, chars);
export const traceIdOf = (rootExecutionId: string): string => hexOf(`trace:${rootExecutionId}`, 32);
export const spanIdOf = (spanId: string): string => hexOf(`span:${spanId}`, 16);

const hr = (ms: number): HrTime => [Math.floor(ms / 1000), Math.round((ms % 1000) * 1e6)];

const KIND: Record<Span['kind'], SpanKind> = {
  execution: SpanKind.SERVER,
  call: SpanKind.CLIENT,
  invocation: SpanKind.INTERNAL,
  rule: SpanKind.INTERNAL,
  timer: SpanKind.INTERNAL,
  signal: SpanKind.INTERNAL,
};

/** Span attributes as OTel takes them: primitives under `cosmos.*`, anything else as JSON text. */
function attributesOf(s: Span): Attributes {
  const out: Attributes = { 'cosmos.kind': s.kind, 'cosmos.execution_id': s.executionId };
  for (const [k, v] of Object.entries(s.attributes)) {
    if (v === undefined || v === null) continue;
    out[`cosmos.${k}`] = typeof v === 'object' ? JSON.stringify(v) : (v as string | number | boolean);
  }
  return out;
}

/** Our spans of one request as OTel spans: one trace, parents linked, each under its service's resource. */
export function toReadableSpans(spans: Span[], rootId: string, fallbackService = 'cosmos'): ReadableSpan[] {
  const traceId = traceIdOf(rootId);
  const byId = new Map(spans.map((s) => [s.id, s]));
  const resources = new Map<string, Resource>();
  const resourceOf = (service: string): Resource => {
    let r = resources.get(service);
    if (!r) resources.set(service, (r = resourceFromAttributes({ 'service.name': service })));
    return r;
  };
  const root = byId.get(rootId);
  const fallbackEnd = root?.end ?? Math.max(...spans.map((s) => s.end ?? s.start));
  return spans.map((s): ReadableSpan => {
    const execution = byId.get(s.executionId);
    const dot = execution?.name.indexOf('.') ?? -1;
    const service = execution && dot > 0 ? execution.name.slice(0, dot) : fallbackService;
    const end = s.end ?? Math.max(fallbackEnd, s.start);
    const ctx = { traceId, spanId: spanIdOf(s.id), traceFlags: TraceFlags.SAMPLED };
    const parent =
      s.parentId !== null && byId.has(s.parentId)
        ? { traceId, spanId: spanIdOf(s.parentId), traceFlags: TraceFlags.SAMPLED }
        : undefined;
    const failed = s.status === 'error';
    return {
      name: s.kind === 'invocation' ? `${service}.${s.name}` : s.name,
      kind: KIND[s.kind],
      spanContext: () => ctx,
      ...(parent && { parentSpanContext: parent }),
      startTime: hr(s.start),
      endTime: hr(end),
      duration: hr(end - s.start),
      status: failed
        ? { code: SpanStatusCode.ERROR, message: JSON.stringify(s.attributes.error ?? 'failed') }
        : { code: s.status === 'ok' ? SpanStatusCode.OK : SpanStatusCode.UNSET },
      attributes: attributesOf(s),
      links: [],
      events: (s.logs ?? []).map((l) => ({
        name: 'log',
        time: hr(l.at),
        attributes: { 'log.severity': l.level, 'log.message': l.msg },
      })),
      ended: true,
      resource: resourceOf(service),
      instrumentationScope: SCOPE,
      droppedAttributesCount: 0,
      droppedEventsCount: 0,
      droppedLinksCount: 0,
    };
  });
}

/**
 * Sends the trace of every request that finishes on this node to an OTLP/HTTP endpoint (SPEC §8): when a root
 * execution finishes, its tree is read from the store and exported as one trace. Export failures are logged
 * and dropped; they never touch the executions.
 */
export class OtlpTraceExport {
  private readonly exporter: OTLPTraceExporter;
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly store: Store,
    private readonly options: OtlpOptions,
    private readonly logger: Logger,
  ) {
    this.exporter = new OTLPTraceExporter({
      url: options.url,
      ...(options.headers && { headers: options.headers }),
    });
  }

  /** Exports a finished execution's trace if it is a root (a child's trace is part of its root's). */
  finished(x: Execution): void {
    if (x.parent) return;
    const p = this.export(x).finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  private async export(root: Execution): Promise<void> {
    try {
      const tree = await traceTree(this.store, root, 10_000);
      const spans = toReadableSpans(spansOf(tree.executions), root.id, this.options.serviceName);
      const result = await new Promise<{ code: ExportResultCode; error?: Error }>((resolve) =>
        this.exporter.export(spans, resolve),
      );
      if (result.code !== ExportResultCode.SUCCESS)
        this.logger.warn({ err: result.error, executionId: root.id }, 'OTLP trace export failed');
    } catch (error) {
      this.logger.warn({ err: error, executionId: root.id }, 'OTLP trace export failed');
    }
  }

  /** Waits for exports under way, then stops the exporter. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.pending]);
    await this.exporter.shutdown();
  }
}
