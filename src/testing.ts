/**
 * `cosmos-platform/testing`: run workflows in memory with stub or real functions and a virtual clock.
 * Kept out of the main entry so production bundles never carry it.
 */
export {
  testWorkflow,
  WorkflowHarness,
  type Firing,
  type HarnessOptions,
  type PendingRequest,
  type Stub,
} from './workflow/harness.js';
