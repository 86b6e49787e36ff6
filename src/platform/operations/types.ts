/**
 * Seams and errors of the operation machinery.
 */
import { ConureError } from '../../util/index.js';
import type { Compare, TxnOp } from '../../client/index.js';
import type { OperationRecord, OperationType } from '../types.js';

/** What a step gets besides the operation. */
export interface StepContext {
  /** Aborted when the worker must stop: its claim or lease is lost, or the pool stops. */
  signal: AbortSignal;
  /** Records a progress message on the running step (best effort; never throws). */
  report(message: string): void;
  /** The worker running the step (for logs). */
  workerId: string;
}

/**
 * Runs an operation's steps (the engines and drivers live behind it).
 *
 * Invariants the worker pool relies on:
 * - `steps(op)` is a pure function of the operation (type, params): the pool calls it once,
 *   when the operation first runs, and stores the list in the record.
 * - `run` is idempotent: a step interrupted mid-way (its worker killed) runs again from the
 *   start on another worker, and must converge to the same state.
 * - `run` throws ConureErrors: `unavailable` means "retry this step later" (the pool retries
 *   with bounded backoff); any other code fails the operation with that code and message.
 */
export interface StepExecutor {
  steps(op: OperationRecord): string[];
  run(op: OperationRecord, stepName: string, ctx: StepContext): Promise<void>;
}

export interface SubmitRequest {
  databaseId: string;
  tenant: string;
  type: OperationType;
  params?: Record<string, unknown>;
  /** Client's Idempotency-Key (per tenant). */
  idempotencyKey?: string;
  /** Hash of the request body the key came with (same key + other hash → `unprocessable`). */
  bodyHash?: string;
  /** Step names when known up front; otherwise the worker asks the StepExecutor. */
  steps?: string[];
  /**
   * More guards and writes for the same txn, e.g. `compare.absent(databases/<id>)` plus the put
   * of the new database record, so a database and its create operation appear together or not
   * at all. A failed extra compare throws StoreConflictError (`conflict`).
   */
  extra?: { compares?: Compare[]; ops?: TxnOp[] };
}

export interface SubmitResult {
  operation: OperationRecord;
  /** False when an Idempotency-Key matched an earlier submit (the operation returned is that one). */
  created: boolean;
  /** Store revision of the submit txn (when created): the mod revision of everything it wrote. */
  revision?: number;
}

/** Another operation holds the database's lock (HTTP 423). */
export class OperationLockedError extends ConureError {
  constructor(readonly databaseId: string, readonly operationId: string) {
    super('locked', `database ${databaseId} is locked by running operation ${operationId}`);
  }
}

/** A worker's guarded write failed: its claim is gone (lease lapsed, or another worker took over). */
export class ClaimLostError extends ConureError {
  constructor(readonly operationId: string, readonly workerId: string) {
    super('conflict', `worker ${workerId} no longer holds the claim on operation ${operationId}`);
  }
}
