/**
 * Plain types of the etcd v3 client: what callers pass and what they get back.
 *
 * Keys and values travel as bytes; callers pass `string | Uint8Array` (strings are UTF-8) and
 * get keys back as strings and values as Buffers (`valueString()` / JSON helpers convert).
 * Revisions, versions and counts are JavaScript numbers, checked to be safe non-negative
 * integers on arrival; lease ids are decimal strings, because etcd hands out 63-bit ids that do
 * not fit a double ("0" means "no lease").
 */

export type Bytes = string | Uint8Array;

/** One key as stored, with its MVCC bookkeeping. */
export interface KeyValue {
  /** The key as UTF-8 text (lossy for binary keys: use `keyBytes` to copy or compare them). */
  key: string;
  /** The key's exact bytes. */
  keyBytes: Buffer;
  value: Buffer;
  createRevision: number;
  modRevision: number;
  /** 1 on create, +1 on every put; 0 only in keys-only/count answers that omit it. */
  version: number;
  /** Lease id, "0" when none. */
  lease: string;
}

export interface RangeOptions {
  /** Every key starting with `key`. */
  prefix?: boolean;
  /** Explicit end of the range (exclusive); overrides `prefix`. */
  rangeEnd?: Bytes;
  /** At most this many keys (0 = no limit). */
  limit?: number;
  /** Read at this past revision (0 = current). Throws `compacted` when below the compaction point. */
  revision?: number;
  keysOnly?: boolean;
  /** Answer only `count`, no keys. */
  countOnly?: boolean;
  /** Serializable (local) read instead of linearizable. */
  serializable?: boolean;
  sort?: { target: 'KEY' | 'VERSION' | 'CREATE' | 'MOD' | 'VALUE'; order: 'ASCEND' | 'DESCEND' };
}

export interface RangeResult {
  kvs: KeyValue[];
  /** More keys match than `limit` allowed. */
  more: boolean;
  /** How many keys match (regardless of limit). */
  count: number;
  /** Store revision the answer was read at. */
  revision: number;
  /** The answering server's cluster and member ids (uint64, decimal). */
  clusterId: string;
  memberId: string;
}

export interface PutOptions {
  /** Lease id to attach the key to ("0"/undefined = none). */
  lease?: string;
  /** Return the previous key-value. */
  prevKv?: boolean;
}

export interface PutResult { revision: number; prevKv?: KeyValue }

export interface DeleteOptions {
  prefix?: boolean;
  rangeEnd?: Bytes;
  prevKv?: boolean;
}

export interface DeleteResult { revision: number; deleted: number; prevKvs: KeyValue[] }

export type CompareOp = '==' | '!=' | '>' | '<';

/** One txn guard. Build them with `compare.*` (see txn.ts). */
export type Compare =
  | { target: 'value'; key: Bytes; op: CompareOp; value: Bytes; rangeEnd?: Bytes }
  | { target: 'version' | 'createRevision' | 'modRevision'; key: Bytes; op: CompareOp; value: number; rangeEnd?: Bytes }
  | { target: 'lease'; key: Bytes; op: CompareOp; value: string; rangeEnd?: Bytes };

/** One txn operation. Build them with `op.*` (see txn.ts). */
export type TxnOp =
  | { type: 'put'; key: Bytes; value: Bytes; options?: PutOptions }
  | { type: 'delete'; key: Bytes; options?: DeleteOptions }
  | { type: 'range'; key: Bytes; options?: RangeOptions };

export interface TxnRequest {
  compare?: Compare[];
  success?: TxnOp[];
  failure?: TxnOp[];
}

/** Per-op answer of a txn, in the order of the branch that ran. */
export type TxnOpResult =
  | { type: 'put'; prevKv?: KeyValue }
  | { type: 'delete'; deleted: number; prevKvs: KeyValue[] }
  | { type: 'range'; kvs: KeyValue[]; more: boolean; count: number };

export interface TxnResult {
  /** True when every compare held and `success` ran; false when `failure` ran. */
  succeeded: boolean;
  revision: number;
  responses: TxnOpResult[];
}

export interface LeaseGrantResult { id: string; ttlSeconds: number }

/** LeaseTimeToLive's answer: `ttlSeconds` -1 when the lease does not exist (expired, revoked). */
export interface LeaseTimeToLiveResult {
  ttlSeconds: number;
  grantedTtlSeconds: number;
  /** The attached keys, when asked for with `keys: true` (else empty). */
  keys: Buffer[];
}

export interface WatchEvent {
  type: 'put' | 'delete';
  kv: KeyValue;
  prevKv?: KeyValue;
}
