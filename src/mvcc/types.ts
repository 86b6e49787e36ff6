/**
 * Request and result types of the MVCC store, transport-neutral. They mirror etcd's v3 API
 * (`etcdserverpb`) with JavaScript names; `api/etcd/codec.ts` converts to and from protobuf.
 *
 * Conventions (etcd's):
 * - `rangeEnd` empty: the single key `key`. `rangeEnd` = [0x00]: every key ≥ `key`.
 *   `key` = [0x00] and `rangeEnd` = [0x00]: every key. Otherwise `[key, rangeEnd)`.
 * - Revision 0 in a request means "the current revision".
 * - Lease ids are positive int64s, as in etcd (whose own ids are mostly above 2^53); 0 means
 *   "no lease". The store keeps them as `LeaseId`s: a number up to 2^53 − 1, a bigint above.
 *   Requests carry int64 ids, revisions and TTLs from the wire as bigints (`Int64`), which are
 *   compared as bigints and converted to numbers only once known to fit (api/etcd/codec.ts
 *   parses them; a revision ≥ 2^53 is a future revision).
 */

/** An int64 from a request: a bigint from the wire, or a safe integer from internal callers. */
export type Int64 = number | bigint;

/**
 * A lease id in its one canonical form, so that it can key a Map: 0 (no lease) or a positive
 * safe integer as a number, an id in [2^53, 2^63 − 1] as a bigint. `leaseKey()` makes one.
 */
export type LeaseId = number | bigint;

/**
 */

export interface KeyValue {
  key: Uint8Array;
  createRevision: number;
  modRevision: number;
  /** 1 after the create, +1 per put; a delete resets it (the key is gone). */
  version: number;
  value: Uint8Array;
  /** 0 when the key has no lease. */
  lease: LeaseId;
}

export type SortOrder = 'none' | 'ascend' | 'descend';
export type SortTarget = 'key' | 'version' | 'create' | 'mod' | 'value';

export interface RangeRequest {
  key: Uint8Array;
  rangeEnd?: Uint8Array;
  /** At most this many kvs; 0 = no limit. */
  limit?: number;
  /** int64 from the wire; ≤ 0 is the current revision, above it a future revision (etcd). */
  revision?: Int64;
  sortOrder?: SortOrder;
  sortTarget?: SortTarget;
  serializable?: boolean;
  keysOnly?: boolean;
  countOnly?: boolean;
  minModRevision?: number;
  maxModRevision?: number;
  minCreateRevision?: number;
  maxCreateRevision?: number;
}

export interface RangeResult {
  revision: number;
  kvs: KeyValue[];
  more: boolean;
  /** Keys in the range at the read revision (before limit and the min/max filters, as etcd). */
  count: number;
}

export interface PutRequest {
  key: Uint8Array;
  value: Uint8Array;
  /** int64 from the wire; must name a granted lease (or 0). */
  lease?: Int64;
  prevKv?: boolean;
  ignoreValue?: boolean;
  ignoreLease?: boolean;
}

export interface PutResult {
  revision: number;
  prevKv?: KeyValue;
}

export interface DeleteRangeRequest {
  key: Uint8Array;
  rangeEnd?: Uint8Array;
  prevKv?: boolean;
}

export interface DeleteRangeResult {
  revision: number;
  deleted: number;
  prevKvs: KeyValue[];
}

export type CompareResult = 'equal' | 'greater' | 'less' | 'not_equal';
export type CompareTarget = 'version' | 'create' | 'mod' | 'value' | 'lease';

export interface Compare {
  result: CompareResult;
  target: CompareTarget;
  key: Uint8Array;
  rangeEnd?: Uint8Array;
  /** The operand: an integer for version/create/mod/lease (compared exactly), bytes for value. */
  operand: Int64 | Uint8Array;
}

export type RequestOp =
  | { range: RangeRequest }
  | { put: PutRequest }
  | { deleteRange: DeleteRangeRequest }
  | { txn: TxnRequest };

export type ResponseOp =
  | { range: RangeResult }
  | { put: PutResult }
  | { deleteRange: DeleteRangeResult }
  | { txn: TxnResult };

export interface TxnRequest {
  compare: Compare[];
  success: RequestOp[];
  failure: RequestOp[];
}

export interface TxnResult {
  revision: number;
  succeeded: boolean;
  responses: ResponseOp[];
}

export interface LeaseGrantResult {
  revision: number;
  id: LeaseId;
  ttlSeconds: number;
}

export interface LeaseRevokeResult {
  revision: number;
}

export interface CompactResult {
  revision: number;
}

export type AlarmKind = 'nospace' | 'corrupt';

export interface Alarm {
  /** The member that raised it (its uint64 id as a decimal string). */
  memberId: string;
  alarm: AlarmKind;
}

export interface AlarmResult {
  revision: number;
  alarms: Alarm[];
}

/** A change seen by watchers. A delete's `kv` holds only `key` and `modRevision`. */
export interface MvccEvent {
  type: 'put' | 'delete';
  kv: KeyValue;
  /** Where the key's previous value lives, if it existed (resolved lazily for prev_kv). */
  prev?: { main: number; sub: number };
}
