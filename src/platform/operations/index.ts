/** Asynchronous, persisted, resumable operations: submit (OperationService) and run (WorkerPool). */
export { OperationService, newOperationId, type OperationServiceOptions } from './operation-service.js';
export { WorkerPool, type WorkerPoolOptions, type WorkerPoolStats, type WorkerState } from './worker-pool.js';
export { OperationLockedError, ClaimLostError, type StepExecutor, type StepContext, type SubmitRequest, type SubmitResult } from './types.js';
