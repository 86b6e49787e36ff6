/**
 * OperationService: submits operations. One txn per submit:
 *
 * ```
 *  compare  locks/<db> absent  ∧  idempotency/<tenant>/<key> absent  ∧  extra compares
 *  success  put operations/<op> (queued) · put locks/<db> · put queue/<op> · put idempotency · extra ops
 *  failure  get locks/<db> · get idempotency/<tenant>/<key>
 * ```
 *
 * Errors: `locked` (OperationLockedError, names the holder) when the database has a queued or
 * running operation; `unprocessable` when the Idempotency-Key was used with another body;
 * `resource_exhausted` when `queueOperationsMax` operations are already queued or running (the
 * count is read before the txn, so racing submitters may overshoot by their number);
 * `conflict` when an extra compare failed; store errors as the client throws them.
 * Same key + same body returns the earlier operation with `created: false`, whatever its state.
 */
import { randomBytes } from 'node:crypto';
import { compare, op } from '../../client/index.js';
import { InvalidArgumentError, ResourceExhaustedError, UnprocessableError } from '../../util/index.js';
import type { OperationRecord } from '../types.js';
import { PlatformStore, StoreConflictError, type IdempotencyRecord, type LockRecord, type QueueEntry } from '../store/index.js';
import { OperationLockedError, type SubmitRequest, type SubmitResult } from './types.js';

export interface OperationServiceOptions {
  store: PlatformStore;
  /** Operations queued or running at once, across databases (default 1000). */
  queueOperationsMax?: number;
  now?: () => Date;
}

/** A new, time-ordered operation id (sorts by creation, so the queue is roughly FIFO). */
export function newOperationId(now = Date.now()): string {
  return `op-${now.toString(36).padStart(9, '0')}-${randomBytes(5).toString('hex')}`;
}

export class OperationService {
  readonly store: PlatformStore;
  readonly queueOperationsMax: number;
  private readonly now: () => Date;

  constructor(opts: OperationServiceOptions) {
    this.store = opts.store;
    this.queueOperationsMax = opts.queueOperationsMax ?? 1000;
    if (!Number.isSafeInteger(this.queueOperationsMax) || this.queueOperationsMax < 1) throw new InvalidArgumentError('queueOperationsMax must be a positive integer');
    this.now = opts.now ?? (() => new Date());
  }

  async submit(req: SubmitRequest): Promise<SubmitResult> {
    const k = this.store.keys;
    const lockKey = k.lock(req.databaseId);
    const idemKey = req.idempotencyKey !== undefined ? k.idempotency(req.tenant, req.idempotencyKey) : undefined;
    if (idemKey) {
      const earlier = await this.replay(idemKey, req);
      if (earlier) return earlier;
    }
    const depth = await this.store.count(k.kind('queue'));
    if (depth >= this.queueOperationsMax) throw new ResourceExhaustedError(`the operation queue is full (${depth} of ${this.queueOperationsMax})`);

    const at = this.now();
    const id = newOperationId(at.getTime());
    const iso = at.toISOString();
    const record: OperationRecord = {
      id, type: req.type, databaseId: req.databaseId, tenant: req.tenant, state: 'queued', params: req.params ?? {},
      steps: (req.steps ?? []).map((name) => ({ name, state: 'pending' })), progress: 0, attempts: 0, createdAt: iso, updatedAt: iso,
    };
    const lock: LockRecord = { operationId: id };
    const entry: QueueEntry = { operationId: id, databaseId: req.databaseId, enqueuedAt: iso };
    const compares = [compare.absent(lockKey), ...(idemKey ? [compare.absent(idemKey)] : []), ...(req.extra?.compares ?? [])];
    const success = [op.putJson(k.operation(id), record), op.putJson(lockKey, lock), op.putJson(k.queue(id), entry), ...(req.extra?.ops ?? [])];
    if (idemKey) {
      const idem: IdempotencyRecord = { operationId: id, bodyHash: req.bodyHash ?? '', createdAt: iso };
      success.push(op.putJson(idemKey, idem));
    }
    const failure = [op.get(lockKey), ...(idemKey ? [op.get(idemKey)] : [])];
    const r = await this.store.client.runTxn({ compare: compares, success, failure });
    if (r.succeeded) return { operation: record, created: true, revision: r.revision };

    const idemRes = r.responses[1];
    if (idemKey && idemRes?.type === 'range' && idemRes.kvs.length) {
      const earlier = await this.replay(idemKey, req);
      if (earlier) return earlier;
    }
    const lockRes = r.responses[0];
    if (lockRes?.type === 'range' && lockRes.kvs[0]) {
      const holder = PlatformStore.versioned<LockRecord>(lockRes.kvs[0]).value.operationId;
      throw new OperationLockedError(req.databaseId, holder);
    }
    throw new StoreConflictError(k.database(req.databaseId), `operation ${req.type} on ${req.databaseId}: a precondition of the submit no longer holds`);
  }

  /** The operation an Idempotency-Key already made, or undefined when the key is new. */
  private async replay(idemKey: string, req: SubmitRequest): Promise<SubmitResult | undefined> {
    const idem = await this.store.read<IdempotencyRecord>(idemKey);
    if (!idem) return undefined;
    if (idem.value.bodyHash !== (req.bodyHash ?? '')) {
      throw new UnprocessableError(`Idempotency-Key ${req.idempotencyKey} was already used with a different request body`);
    }
    const existing = await this.store.getOperation(idem.value.operationId);
    if (!existing) return undefined;
    return { operation: existing.value, created: false };
  }

  /** The operation, or undefined. */
  async get(id: string): Promise<OperationRecord | undefined> {
    return (await this.store.getOperation(id))?.value;
  }
}
