/**
 * The state store: the durable, byte-keyed B+tree that holds the replicated state machine.
 *
 * ```
 *   StateStore
 *   ├── meta            applied index (8-byte big-endian), written in the same txn as every change
 *   ├── bucket "kv"     key bytes → value bytes, ordered by unsigned byte comparison
 *   ├── bucket "..."    further buckets (MVCC revisions, leases, …) share the same atomicity
 *   └── …
 * ```
 *
 * Invariants every implementation keeps (checked by `state-store.contract.ts`):
 * - Keys are compared as unsigned bytes (memcmp order), so big-endian integers sort numerically.
 * - `apply(index, ops)` is atomic: either all ops and the new applied index are visible, or none.
 * - `apply` with `index <= appliedIndex()` changes nothing and returns false. This makes
 *   re-applying a raft log after a crash idempotent.
 * - Changes are visible to reads as soon as `apply` returns; they are durable once the promise
 *   of a later `sync()` resolves. Callers acknowledge a write only after `sync()` (group commit:
 *   many applies, one fsync).
 *
 * Ownership: one writer (the node's apply loop); any number of synchronous readers.
 * Errors: `InvalidArgumentError` for bad bucket names or empty keys; `ClosedError` after close;
 * storage I/O failures surface as `ConureError('internal')` with the lmdb error as cause.
 */
export interface StateStore {
  /** Highest log index whose effects are in the store; 0 for a new store. */
  appliedIndex(): number;
  /** The value at `key` in `bucket`, or undefined. */
  get(bucket: string, key: Uint8Array): Uint8Array | undefined;
  /** Key/value pairs in `[start, end)` in byte order (descending with `reverse`), at most `limit`. */
  range(bucket: string, opts?: RangeOptions): KeyValue[];
  /** Number of keys in `[start, end)`. */
  count(bucket: string, opts?: Omit<RangeOptions, 'limit' | 'reverse'>): number;
  /** Atomically applies `ops` and records `index` as applied. False (and no change) if already applied. */
  apply(index: number, ops: readonly StateOp[]): boolean;
  /**
   * Runs `fn` inside one write transaction: every `apply` it makes commits together (or not at
   * all if `fn` throws). Used for group commit: many log entries, one commit, one fsync.
   * Nested calls join the outer transaction.
   */
  batch<T>(fn: () => T): T;
  /** Resolves when every change applied so far is durable on disk. */
  sync(): Promise<void>;
  /** Approximate bytes used on disk (or in memory). */
  sizeBytes(): number;
  /** Every bucket's contents, for snapshots. */
  buckets(): string[];
  /** Replaces the whole content with `data` and sets the applied index (snapshot install). Durable on resolve. */
  restore(index: number, data: ReadonlyMap<string, KeyValue[]>): Promise<void>;
  close(): Promise<void>;
}

export interface KeyValue {
  key: Uint8Array;
  value: Uint8Array;
}

export interface RangeOptions {
  /** Inclusive lower bound; absent means the first key. */
  start?: Uint8Array;
  /** Exclusive upper bound; absent means past the last key. */
  end?: Uint8Array;
  limit?: number;
  reverse?: boolean;
}

export type StateOp =
  | { op: 'put'; bucket: string; key: Uint8Array; value: Uint8Array }
  | { op: 'del'; bucket: string; key: Uint8Array };

/** Bucket names: lowercase letters, digits, `-` and `_`, 1–32 characters; `__meta` is reserved. */
export const BUCKET_NAME = /^[a-z0-9_-]{1,32}$/;

/** Unsigned lexicographic comparison of byte strings (memcmp order). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** 8-byte big-endian encoding of a non-negative safe integer (or a bigint below 2^64). */
export function encodeUint64(n: number | bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

export function decodeUint64(b: Uint8Array): number {
  return Number(new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(0));
}

/** The exact value of an 8-byte big-endian encoding, as a bigint. */
export function decodeUint64Exact(b: Uint8Array): bigint {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(0);
}
