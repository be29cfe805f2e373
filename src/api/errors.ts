import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isCosmosError } from '../errors.js';

/** The one error shape of the HTTP edge: `{error: {code, message, details?}}`. */
export interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

export function errorHandler(
  error: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  if (isCosmosError(error)) {
    void reply.status(error.status).send({ error: error.toJSON() } satisfies ErrorBody);
    return;
  }
  const status = 'statusCode' in error && typeof error.statusCode === 'number' ? error.statusCode : 500;
  if (status >= 500) request.log.error({ err: error }, 'request failed');
  const code = status === 413 ? 'payload_too_large' : status >= 500 ? 'internal' : 'bad_request';
  void reply.status(status).send({
    error: { code, message: status >= 500 ? 'internal error' : error.message },
  } satisfies ErrorBody);
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): void {
  void reply.status(404).send({
    error: { code: 'not_found', message: `no route ${request.method} ${request.url}` },
  } satisfies ErrorBody);
}
