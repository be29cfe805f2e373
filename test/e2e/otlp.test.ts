import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spanIdOf, traceIdOf } from '../../src/observability/otlp.js';
import { cosmos, listeningUrl, stopCli, type CliRun } from '../support/cli.js';

interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes: OtlpAttribute[];
}
interface Received {
  service: string;
  span: OtlpSpan;
}

const attr = (s: OtlpSpan, key: string): unknown => {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v?.stringValue ?? v?.intValue ?? v?.doubleValue ?? v?.boolValue;
};

/** A test OTLP/HTTP receiver: `cosmos dev` exports to it through the standard OTEL_* variables. */
describe('OTLP trace export', () => {
  let receiver: Server;
  const received: Received[] = [];
  const requests: string[] = [];
  let run: CliRun;
  let url: string;
  let data: string;

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        requests.push(
          `${req.method} ${req.url} ${req.headers['content-type']} ${String(req.headers['x-tenant'])}`,
        );
        const doc = JSON.parse(body) as {
          resourceSpans: {
            resource: { attributes: OtlpAttribute[] };
            scopeSpans: { spans: OtlpSpan[] }[];
          }[];
        };
        for (const rs of doc.resourceSpans) {
          const service =
            rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
          for (const ss of rs.scopeSpans) for (const span of ss.spans) received.push({ service, span });
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const port = (receiver.address() as AddressInfo).port;
    data = mkdtempSync(join(tmpdir(), 'cosmos-otlp-'));
    run = cosmos(['dev', '--port', '0', '--data', data], {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}/`,
      OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=acme',
    });
    url = await listeningUrl(run, 60_000);
  }, 90_000);

  afterAll(async () => {
    await stopCli(run);
    await new Promise((r) => receiver.close(r));
    rmSync(data, { recursive: true, force: true });
  });

  it('exports the spans of one ingest as one trace, linked across the service boundary', async () => {
    const res = await fetch(`${url}/v1/services/catalog/ingest`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'wait=60' },
      body: JSON.stringify({
        source: { sample: 'countdown', frames: 16, width: 160, height: 90 },
        ladder: [{ name: 'small', width: 80, height: 46, codec: 'webp', quality: 60 }],
        chunkFrames: 8,
      }),
    });
    expect(res.status).toBe(200);
    const { executionId } = (await res.json()) as { executionId: string };
    const traceId = traceIdOf(executionId);
    for (let i = 0; i < 200 && !received.some((r) => r.span.spanId === spanIdOf(executionId)); i++)
      await new Promise((r) => setTimeout(r, 50));

    expect(requests[0]).toBe('POST /v1/traces application/json acme');
    const spans = received.filter((r) => r.span.traceId === traceId);
    expect(spans.length).toBeGreaterThan(10);
    expect(new Set(received.map((r) => r.span.traceId))).toEqual(new Set([traceId]));
    const byId = new Map(spans.map((r) => [r.span.spanId, r]));
    // Every span but the root hangs from a span of the same trace.
    const roots = spans.filter((r) => !r.span.parentSpanId);
    expect(roots.map((r) => r.span.name)).toEqual(['catalog.ingest']);
    for (const r of spans) if (r.span.parentSpanId) expect(byId.has(r.span.parentSpanId)).toBe(true);

    // Across the boundary: catalog's call span is the parent of encoder's execution span.
    const encodeRun = spans.find(
      (r) => r.span.name === 'encoder.encode' && attr(r.span, 'cosmos.kind') === 'execution',
    )!;
    expect(encodeRun.service).toBe('encoder');
    const call = byId.get(encodeRun.span.parentSpanId!)!;
    expect(call.service).toBe('catalog');
    expect(attr(call.span, 'cosmos.kind')).toBe('call');
    expect(byId.get(call.span.parentSpanId!)!.span.name).toBe('catalog.ingest');
    // encoder's invocations hang from encoder's execution, and name their service.
    const chunks = spans.filter((r) => r.span.name === 'encoder.encodeChunk');
    expect(chunks).toHaveLength(2);
    for (const c of chunks) {
      expect(c.service).toBe('encoder');
      expect(c.span.parentSpanId).toBe(encodeRun.span.spanId);
      expect(typeof attr(c.span, 'cosmos.node')).toBe('string');
    }
    expect(new Set(spans.map((r) => r.service))).toEqual(new Set(['catalog', 'encoder', 'quality']));
  });
});
