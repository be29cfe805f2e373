import type { FastifyInstance } from 'fastify';
import { CosmosError } from '../../errors.js';
import type { Store } from '../../store/store.js';
import type { WorkflowEngine } from '../../workflow/engine.js';
import { EXECUTION_STATUSES, type Execution, type ExecutionStatus } from '../../workflow/execution.js';
import { executionPage, MAX_PAGE, traceAndChildren } from '../listing.js';
import { executionView, logLines } from '../views.js';

async function found(engine: WorkflowEngine, id: string): Promise<Execution> {
  const x = await engine.get(id);
  if (!x) throw new CosmosError('execution_not_found', `no execution "${id}"`, { id });
  return x;
}

/** Reading executions, their trace and logs; cancelling and signalling them (SPEC §7). */
export function executionRoutes(app: FastifyInstance, store: Store, engine: WorkflowEngine): void {
  app.get<{
    Querystring: { service?: string; status?: string; q?: string; limit?: string; cursor?: string };
  }>('/v1/executions', async (req) => {
    const { service, status, q, cursor } = req.query;
    if (status !== undefined && !EXECUTION_STATUSES.includes(status as ExecutionStatus))
      throw new CosmosError('invalid_argument', `status must be one of ${EXECUTION_STATUSES.join(', ')}`, {
        status,
      });
    const limit = req.query.limit === undefined ? 50 : Number(req.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE)
      throw new CosmosError('invalid_argument', `limit must be an integer from 1 to ${MAX_PAGE}`);
    return executionPage(store, {
      limit,
      ...(service && { service }),
      ...(status && { status }),
      ...(q && { q }),
      ...(cursor && { cursor }),
    });
  });

  app.get<{ Params: { id: string } }>('/v1/executions/:id', async (req) =>
    executionView(await found(engine, req.params.id)),
  );

  app.get<{ Params: { id: string } }>('/v1/executions/:id/trace', async (req) => {
    const x = await found(engine, req.params.id);
    return { executionId: x.id, status: x.status, ...(await traceAndChildren(store, x)) };
  });

  // The workflow's ctx.log lines and what its functions printed, in time order; `q` keeps matching lines.
  app.get<{ Params: { id: string }; Querystring: { q?: string } }>('/v1/executions/:id/logs', async (req) => {
    const x = await found(engine, req.params.id);
    const q = req.query.q?.toLowerCase();
    const lines = logLines(await engine.trace(x.id)).filter(
      (l) => q === undefined || l.msg.toLowerCase().includes(q),
    );
    return { executionId: x.id, lines };
  });

  app.post<{ Params: { id: string }; Body: { reason?: unknown } | undefined }>(
    '/v1/executions/:id/cancel',
    async (req, reply) => {
      const x = await found(engine, req.params.id);
      if (x.status !== 'running')
        throw new CosmosError('execution_finished', `execution ${x.id} is ${x.status}`, {
          id: x.id,
          status: x.status,
        });
      const reason = typeof req.body?.reason === 'string' ? req.body.reason : 'canceled by request';
      await engine.cancel(x.id, reason);
      return reply.status(202).send({ executionId: x.id, status: 'canceling' });
    },
  );

  app.post<{ Params: { id: string }; Body: { name?: unknown; payload?: unknown } | undefined }>(
    '/v1/executions/:id/signal',
    async (req, reply) => {
      const name = req.body?.name;
      if (typeof name !== 'string' || name === '')
        throw new CosmosError('validation_failed', 'a signal needs a name', {
          issues: [{ path: 'name', message: 'required string', code: 'invalid_type' }],
        });
      await engine.signal(req.params.id, name, req.body?.payload);
      return reply.status(202).send({ executionId: req.params.id, signal: name });
    },
  );
}
