/**
 * The public API of Cosmos. Everything not exported here is internal and may change without notice.
 */
export { openStore } from './store/open.js';
export type { Store } from './store/store.js';
export type {
  BlobStore,
  BlobInfo,
  BlobMeta,
  BlobRef,
  BlobSource,
  BlobStat,
  ByteRange,
} from './store/blobs/blob-store.js';
export { isBlobRef } from './store/blobs/blob-store.js';
export { openBlobStore } from './store/blobs/open-blobs.js';
export { FsBlobStore } from './store/blobs/fs-blob-store.js';
export { PgBlobStore } from './store/blobs/pg-blob-store.js';
export { Queue, type MaintenanceReport } from './queue/queue.js';
export { Consumer, type Handler, type WorkContext, type WorkOptions } from './queue/consumer.js';
export { startNode, type CosmosNode } from './node.js';
export {
  resolveOptions,
  DEFAULT_QUEUE_CONFIG,
  DEFAULT_QUEUE_OPTIONS,
  DEFAULT_SERVER_OPTIONS,
  type CosmosOptions,
  type CosmosOptionsInput,
  type PostgresStoreOptions,
  type QueueOptions,
  type QueueOptionsInput,
  type ServerOptions,
  type SqliteStoreOptions,
  type StoreOptions,
} from './config.js';
export {
  fn,
  type FunctionContext,
  type FunctionDefinition,
  type FunctionOptions,
  type Handler as FunctionHandler,
  type BatchHandler,
  type Backoff,
} from './functions/define.js';
export { NonRetryableError, FunctionFailure, type FailureClass } from './functions/failure.js';
export { commandFn, type CommandDefinition, type CommandOptions } from './functions/runtimes/command.js';
export {
  FunctionRuntime,
  type FunctionRuntimeOptions,
  type InvocationResult,
  type InvokeOptions,
} from './functions/runtime.js';
export type { PoolConfig } from './functions/scheduler/slot-scheduler.js';
export * from './errors.js';
export * from './types.js';
export {
  rule,
  rules,
  type Rule,
  type RuleSpec,
  type RuleContext,
  type RulesOptions,
  type SignalHandler,
  type Workflow,
  type WorkflowFailure,
  type WorkflowResult,
  type InvokeOptions as RuleInvokeOptions,
} from './workflow/define.js';
export { dag, type DagOptions, type DagState, type DagView, type Stage } from './workflow/dag.js';
export type { Execution, ExecutionStatus, ExecutionEvent, TraceEvent } from './workflow/execution.js';
export { WorkflowEngine, type WorkflowEngineOptions, type ExecuteOptions } from './workflow/engine.js';
export {
  defineService,
  type ServiceSpec,
  type ServiceDefinition,
  type ServiceOwner,
  type OperationSpec,
  type PriorityRange,
} from './api/service.js';
