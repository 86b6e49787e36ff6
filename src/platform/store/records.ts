/**
 * Records the store keeps besides those of src/platform/types.ts (which this layer does not
 * change): tenants, and the bookkeeping values of the operation machinery.
 */

/** A tenant under `tenants/<id>`. Tokens are kept only as SHA-256 hex digests. */
export interface TenantRecord {
  id: string;
  name: string;
  /** SHA-256 (hex) of each bearer token the tenant may use. */
  tokenHashes: string[];
  createdAt: string;
}

/** `locks/<dbId>`: the one operation running (or queued) on a database. */
export interface LockRecord { operationId: string }

/** `queue/<opId>`: an operation waiting for (or being run by) a worker. */
export interface QueueEntry { operationId: string; databaseId: string; enqueuedAt: string }

/** `idempotency/<tenant>/<key>`: the operation an Idempotency-Key created, and its body's hash. */
export interface IdempotencyRecord { operationId: string; bodyHash: string; createdAt: string }

/** `ports/<n>`: who holds a TCP port. */
export interface PortRecord { owner: string; reservedAt: string }

/** A value read from the store with its MVCC revisions (the optimistic-concurrency token). */
export interface Versioned<T> {
  value: T;
  key: string;
  modRevision: number;
  createRevision: number;
}

/** `tokens/<sha256>`: which tenant a bearer token belongs to (the token itself is never stored). */
export interface TokenRecord { tenant: string; createdAt: string }
