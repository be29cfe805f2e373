import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { CosmosError } from '../../errors.js';
import type { WorkflowEngine } from '../../workflow/engine.js';
import { workflowName, type ServiceCatalog } from '../catalog.js';
import { executionLinks } from '../views.js';

/** Longest `Prefer: wait=N` honoured, in seconds (below the server's request timeout). */
export const MAX_WAIT_SECONDS = 60;

/** `Prefer: wait=N` (RFC 7240) in seconds, capped; undefined when absent. */
export function preferWait(header: string | string[] | undefined): number | undefined {
  const text = Array.isArray(header) ? header.join(',') : header;
  const m = text?.match(/(?:^|[,;\s])wait\s*=\s*"?(\d+(?:\.\d+)?)"?/i);
  return m ? Math.min(Number(m[1]), MAX_WAIT_SECONDS) : undefined;
}

function integerHeader(value: string | string[] | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value[0]! : value;
  if (!/^-?\d+$/.test(text.trim()))
    throw new CosmosError('invalid_argument', `header ${name} must be an integer, got "${text}"`, {
      header: name,
    });
  return Number(text);
}

/**
 * `POST /v1/services/{service}/{operation}`: validates the input against the operation's schema, starts an
 * execution (the same one again for a repeated `Idempotency-Key`), and answers 202 with its links, or 200
 * with the output when it finished within `Prefer: wait=N`.
 */
export function submitRoutes(app: FastifyInstance, catalog: ServiceCatalog, engine: WorkflowEngine): void {
  app.post<{ Params: { service: string; operation: string } }>(
    '/v1/services/:service/:operation',
    async (req, reply) => {
      const { service, operation } = req.params;
      const input = catalog.validate(service, operation, req.body ?? {});
      const priority = catalog.priority(
        service,
        operation,
        integerHeader(req.headers['cosmos-priority'], 'Cosmos-Priority'),
        Date.now(),
      );
      const key = req.headers['idempotency-key'];
      const idempotencyKey = Array.isArray(key) ? key[0] : key;
      if (idempotencyKey !== undefined && (idempotencyKey.length === 0 || idempotencyKey.length > 255))
        throw new CosmosError('invalid_argument', 'Idempotency-Key must be 1 to 255 characters');
      const workflow = workflowName(service, operation);
      const id =
        idempotencyKey === undefined
          ? undefined
          : `${workflow}-${createHash('sha256').update(idempotencyKey).digest('base64url').slice(0, 32)}`;
      const started = await engine.execute(workflow, input, {
        priority,
        ...(id !== undefined && { id }),
      });
      let status = 'running';
      if (!started.created) {
        const existing = await engine.get(started.id);
        if (existing && JSON.stringify(existing.input) !== JSON.stringify(input))
          throw new CosmosError(
            'idempotency_conflict',
            'this Idempotency-Key was used for a different input; use a new key for a new request',
            { executionId: started.id },
          );
        status = existing?.status ?? status;
      }
      const wait = preferWait(req.headers.prefer);
      if (wait !== undefined && wait > 0) {
        reply.header('preference-applied', `wait=${wait}`);
        const x = await engine.wait(started.id, wait * 1000).catch((e: unknown) => {
          if (e instanceof CosmosError && e.code === 'execution_wait_timeout') return undefined;
          throw e;
        });
        if (x && x.status !== 'running')
          return reply.status(200).send({
            executionId: x.id,
            status: x.status,
            ...(x.status === 'succeeded' ? { output: x.output ?? null } : { error: x.error }),
            links: executionLinks(x.id),
          });
      }
      const links = executionLinks(started.id);
      return reply
        .status(202)
        .header('location', links.self)
        .send({ executionId: started.id, status, created: started.created, links });
    },
  );
}
