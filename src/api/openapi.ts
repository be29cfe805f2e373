import { z } from 'zod';
import type { ServiceDefinition } from './service.js';

type Json = Record<string, unknown>;

/** A zod schema as JSON Schema draft 2020-12, the dialect of OpenAPI 3.1. */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): Json {
  const s = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as Json;
  delete s.$schema;
  return s;
}

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json): Json => ({ 'application/json': { schema } });
const errorResponse = (description: string): Json => ({ description, content: json(ref('Error')) });

const common: Json = {
  Error: {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: {
          code: { type: 'string', description: 'stable, machine-readable' },
          message: { type: 'string' },
          details: {
            type: 'object',
            description: 'validation_failed: `issues`, one per failing path',
            additionalProperties: true,
          },
        },
      },
    },
  },
  Links: {
    type: 'object',
    additionalProperties: { type: 'string' },
  },
  Accepted: {
    type: 'object',
    required: ['executionId', 'status', 'links'],
    properties: {
      executionId: { type: 'string' },
      status: { type: 'string', enum: ['running', 'succeeded', 'failed', 'canceled'] },
      created: { type: 'boolean' },
      links: ref('Links'),
    },
  },
  ExecutionSummary: {
    type: 'object',
    required: ['executionId', 'workflow', 'status', 'createdAt'],
    properties: {
      executionId: { type: 'string' },
      service: { type: 'string' },
      operation: { type: 'string' },
      workflow: { type: 'string' },
      version: { type: 'string' },
      status: { type: 'string', enum: ['running', 'succeeded', 'failed', 'canceled'] },
      priority: { type: 'integer' },
      parentId: { type: 'string' },
      createdAt: { type: 'string', format: 'date-time' },
      updatedAt: { type: 'string', format: 'date-time' },
      finishedAt: { type: 'string', format: 'date-time' },
      durationMs: { type: 'integer' },
    },
  },
  Execution: {
    allOf: [
      ref('ExecutionSummary'),
      {
        type: 'object',
        properties: {
          input: {},
          output: {},
          state: {},
          error: { type: 'object', additionalProperties: true },
          outstanding: { type: 'array', items: { type: 'object', additionalProperties: true } },
          links: ref('Links'),
        },
      },
    ],
  },
};

const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };

/** The platform's own routes: executions, their trace, logs, cancel and signal. */
function platformPaths(): Json {
  return {
    '/v1/executions': {
      get: {
        operationId: 'listExecutions',
        summary: 'Search executions, newest first',
        parameters: [
          { name: 'service', in: 'query', schema: { type: 'string' } },
          {
            name: 'status',
            in: 'query',
            schema: { type: 'string', enum: ['running', 'succeeded', 'failed', 'canceled'] },
          },
          {
            name: 'q',
            in: 'query',
            schema: { type: 'string' },
            description: 'an id, or text in the execution',
          },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
          { name: 'cursor', in: 'query', schema: { type: 'string' } },
        ],
        responses: {
          '200': {
            description: 'a page of executions',
            content: json({
              type: 'object',
              required: ['items', 'nextCursor'],
              properties: {
                items: { type: 'array', items: ref('ExecutionSummary') },
                nextCursor: { type: ['string', 'null'] },
              },
            }),
          },
          '400': errorResponse('a bad filter or cursor'),
        },
      },
    },
    '/v1/services': {
      get: {
        operationId: 'listServices',
        summary:
          'The deployed services: owners, calls, secrets, operations and functions with their versions',
        responses: {
          '200': { description: 'services', content: json({ type: 'object', additionalProperties: true }) },
        },
      },
    },
    '/v1/queues': {
      get: {
        operationId: 'listQueues',
        summary: 'Every queue: messages by state, ready messages by priority class with the oldest',
        responses: {
          '200': { description: 'queues', content: json({ type: 'object', additionalProperties: true }) },
        },
      },
    },
    '/v1/pools': {
      get: {
        operationId: 'listPools',
        summary: "This node's pools (slots, waiting, workers), runtimes and functions",
        responses: {
          '200': { description: 'pools', content: json({ type: 'object', additionalProperties: true }) },
        },
      },
    },
    '/v1/nodes': {
      get: {
        operationId: 'listNodes',
        summary:
          'The node registry: every node of the installation with its roles, pools, slots, duties held, status (up, draining, stopped, lost) and last heartbeat',
        responses: {
          '200': {
            description: 'nodes',
            content: json({
              type: 'object',
              properties: { nodes: { type: 'array', items: { type: 'object', additionalProperties: true } } },
              required: ['nodes'],
            }),
          },
        },
      },
    },
    '/v1/live': {
      get: {
        operationId: 'liveUpdates',
        summary: 'Server-sent events: `executions` with the summaries of executions this node changed',
        responses: {
          '200': {
            description: 'an event stream',
            content: { 'text/event-stream': { schema: { type: 'string' } } },
          },
        },
      },
    },
    '/v1/services/{service}/callers': {
      get: {
        operationId: 'serviceCallers',
        summary: 'Every service that calls this one, directly or through others, nearest first',
        parameters: [{ name: 'service', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          '200': {
            description: 'callers with their depth',
            content: json({ type: 'object', additionalProperties: true }),
          },
          '404': errorResponse('no such service'),
        },
      },
    },
    '/v1/executions/{id}': {
      get: {
        operationId: 'getExecution',
        parameters: [idParam],
        responses: {
          '200': { description: 'the execution', content: json(ref('Execution')) },
          '404': errorResponse('no such execution'),
        },
      },
    },
    '/v1/executions/{id}/trace': {
      get: {
        operationId: 'getExecutionTrace',
        parameters: [idParam],
        responses: {
          '200': {
            description: 'the trace and the child executions',
            content: json({ type: 'object', additionalProperties: true }),
          },
          '404': errorResponse('no such execution'),
        },
      },
    },
    '/v1/executions/{id}/logs': {
      get: {
        operationId: 'getExecutionLogs',
        summary: "The workflow's ctx.log lines and what its functions printed, in time order",
        parameters: [
          idParam,
          {
            name: 'q',
            in: 'query',
            description: 'keep only the lines holding this text',
            schema: { type: 'string' },
          },
        ],
        responses: {
          '200': { description: 'log lines', content: json({ type: 'object', additionalProperties: true }) },
          '404': errorResponse('no such execution'),
        },
      },
    },
    '/v1/executions/{id}/cancel': {
      post: {
        operationId: 'cancelExecution',
        parameters: [idParam],
        responses: {
          '202': { description: 'cancellation requested', content: json({ type: 'object' }) },
          '404': errorResponse('no such execution'),
          '409': errorResponse('already finished'),
        },
      },
    },
    '/v1/executions/{id}/signal': {
      post: {
        operationId: 'signalExecution',
        parameters: [idParam],
        requestBody: {
          required: true,
          content: json({
            type: 'object',
            required: ['name'],
            properties: { name: { type: 'string' }, payload: {} },
          }),
        },
        responses: {
          '202': { description: 'signal queued', content: json({ type: 'object' }) },
          '400': errorResponse('unknown signal'),
          '404': errorResponse('no such execution'),
          '409': errorResponse('already finished'),
        },
      },
    },
  };
}

/** OpenAPI 3.1 of every deployed operation and of the platform routes (SPEC §7). */
export function openApiDocument(services: ServiceDefinition[], serverUrl?: string): Json {
  const schemas: Json = { ...common };
  const paths: Json = platformPaths();
  for (const s of [...services].sort((a, b) => a.name.localeCompare(b.name)))
    for (const [op, spec] of Object.entries(s.operations)) {
      const base = `${pascal(s.name)}${pascal(op)}`;
      schemas[`${base}Input`] = jsonSchemaOf(spec.input, 'input');
      schemas[`${base}Output`] = jsonSchemaOf(spec.output, 'output');
      paths[`/v1/services/${s.name}/${op}`] = {
        post: {
          operationId: `${camel(s.name)}${pascal(op)}`,
          tags: [s.name],
          summary: spec.description ?? `${s.name}.${op}`,
          parameters: [
            {
              name: 'Prefer',
              in: 'header',
              schema: { type: 'string', examples: ['wait=10'] },
              description: 'wait=N: answer 200 with the output if the execution finishes within N seconds',
            },
            { name: 'Idempotency-Key', in: 'header', schema: { type: 'string', maxLength: 255 } },
            {
              name: 'Cosmos-Priority',
              in: 'header',
              schema: {
                type: 'integer',
                ...(spec.priority?.min !== undefined && { minimum: spec.priority.min }),
                ...(spec.priority?.max !== undefined && { maximum: spec.priority.max }),
              },
              description: 'priority offset in ms from now; lower runs first',
            },
          ],
          requestBody: { required: true, content: json(ref(`${base}Input`)) },
          responses: {
            '200': {
              description: 'finished within Prefer: wait',
              content: json({
                type: 'object',
                required: ['executionId', 'status'],
                properties: {
                  executionId: { type: 'string' },
                  status: { type: 'string' },
                  output: ref(`${base}Output`),
                  error: { type: 'object', additionalProperties: true },
                  links: ref('Links'),
                },
              }),
            },
            '202': { description: 'accepted; poll links.self', content: json(ref('Accepted')) },
            '400': errorResponse('invalid input (details.issues lists each path) or priority'),
            '404': errorResponse('unknown service or operation'),
            '409': errorResponse('Idempotency-Key reused with a different input'),
          },
        },
      };
    }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Cosmos',
      version: '1',
      description: 'Operations of the services deployed on this Cosmos, and the executions they start.',
    },
    ...(serverUrl && { servers: [{ url: serverUrl }] }),
    tags: services.map((s) => ({
      name: s.name,
      description: `${s.description ?? s.name} (owner: ${s.owner.team})`,
    })),
    paths,
    components: { schemas },
  };
}

export function pascal(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((p) => p[0]!.toUpperCase() + p.slice(1))
    .join('');
}

function camel(name: string): string {
  const p = pascal(name);
  return p[0]!.toLowerCase() + p.slice(1);
}
