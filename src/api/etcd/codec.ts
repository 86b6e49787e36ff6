/**
 * Conversions between etcd's protobuf messages (as @grpc/proto-loader objects: snake/etcd-case
 * field names, int64 as decimal strings, enums as their names, bytes as Buffers) and the
 * transport-neutral MVCC types. Shared by the gRPC services and the JSON gateway, which feeds
 * the same object shapes after base64-decoding bytes.
 */
import {
  type Compare, type CompareResult, type CompareTarget, type DeleteRangeRequest, type DeleteRangeResult, type KeyValue, type PutRequest,
  type PutResult, type RangeRequest, type RangeResult, type RequestOp, type ResponseOp, type SortOrder, type SortTarget, type TxnRequest,
  type TxnResult, type WatchEvent, MvccError,
} from '../../mvcc/index.js';

/** A decoded protobuf message: loose by nature, checked field by field here. */
export type Msg = Record<string, unknown>;

/** etcd's response header. All ids are uint64 decimal strings. */
export interface Header {
  cluster_id: string;
  member_id: string;
  revision: string;
  raft_term: string;
}

const EMPTY = new Uint8Array(0);

export function bytes(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') return new Uint8Array(Buffer.from(v, 'base64'));
  return EMPTY;
}

/** The int64 range, as bigints. */
export const INT64_MAX = (1n << 63n) - 1n;
export const INT64_MIN = -(1n << 63n);
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);
const DECIMAL = /^-?[0-9]{1,20}$/;

/**
 * An int64 field as a bigint, parsed strictly and never through a float: proto-loader gives
 * int64 as a decimal string (`longs: String`); the JSON gateway may send a decimal string or a
 * safe integer. Absent means 0. Anything else (not a decimal, outside int64, a fraction, a float
 * beyond 2^53) is MvccError('invalid') — etcd's gateway refuses such JSON too.
 */
export function int64(v: unknown, field = 'value'): bigint {
  if (v === undefined || v === null || v === '') return 0n;
  if (typeof v === 'bigint') {
    if (v > INT64_MAX || v < INT64_MIN) throw new MvccError('invalid', `${field} ${v} is outside int64`);
    return v;
  }
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new MvccError('invalid', `${field} ${v} is not an exact integer`);
    return BigInt(v);
  }
  if (typeof v === 'string' && DECIMAL.test(v)) {
    const b = BigInt(v);
    if (b <= INT64_MAX && b >= INT64_MIN) return b;
  }
  throw new MvccError('invalid', `${field} ${JSON.stringify(String(v)).slice(0, 40)} is not an int64`);
}

/**
 * An int64 field as the store's `Int64`: a number when it is a safe integer (every value the
 * store can hold is), else the exact bigint, so the check that refuses it (future revision,
 * lease not found) compares it exactly. Keeps ordinary commands as small msgpack numbers.
 */
export function int64Value(v: unknown, field: string): number | bigint {
  const b = int64(v, field);
  return b <= SAFE_MAX && b >= -SAFE_MAX ? Number(b) : b;
}

/**
 * An int64 field where only the range [-1, 2^53 - 1] can mean anything different: values above
 * are saturated to 2^53 - 1 and values below to -1. Exact for limits and min/max revision
 * filters, because no revision reaches 2^53 - 1 (etcd: more is "no limit", negative is "none").
 */
export function saturated(v: unknown, field: string): number {
  const b = int64(v, field);
  if (b > SAFE_MAX) return Number.MAX_SAFE_INTEGER;
  if (b < -1n) return -1;
  return Number(b);
}

/** A safe non-negative int64 field (ids of watches and the like); beyond 2^53 is invalid. */
export function int(v: unknown, field = 'value'): number {
  const b = int64(v, field);
  if (b > SAFE_MAX || b < -SAFE_MAX) throw new MvccError('invalid', `${field} ${b} is beyond 2^53`);
  return Number(b);
}

function bool(v: unknown): boolean { return v === true; }

function enumName(v: unknown, names: readonly string[]): string {
  if (typeof v === 'number') return names[v] ?? names[0]!;
  if (typeof v === 'string') return names.includes(v.toUpperCase()) ? v.toUpperCase() : names[0]!;
  return names[0]!;
}

const SORT_ORDERS = ['NONE', 'ASCEND', 'DESCEND'] as const;
const SORT_TARGETS = ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'] as const;
const COMPARE_RESULTS = ['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'] as const;
const COMPARE_TARGETS = ['VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE'] as const;

export function decodeRange(m: Msg): RangeRequest {
  return {
    key: bytes(m.key),
    rangeEnd: bytes(m.range_end),
    limit: saturated(m.limit, 'limit'),
    revision: int64Value(m.revision, 'revision'),
    sortOrder: enumName(m.sort_order, SORT_ORDERS).toLowerCase() as SortOrder,
    sortTarget: enumName(m.sort_target, SORT_TARGETS).toLowerCase() as SortTarget,
    serializable: bool(m.serializable),
    keysOnly: bool(m.keys_only),
    countOnly: bool(m.count_only),
    minModRevision: saturated(m.min_mod_revision, 'min_mod_revision'),
    maxModRevision: saturated(m.max_mod_revision, 'max_mod_revision'),
    minCreateRevision: saturated(m.min_create_revision, 'min_create_revision'),
    maxCreateRevision: saturated(m.max_create_revision, 'max_create_revision'),
  };
}

export function decodePut(m: Msg): PutRequest {
  return {
    key: bytes(m.key),
    value: bytes(m.value),
    lease: int64Value(m.lease, 'lease'),
    prevKv: bool(m.prev_kv),
    ignoreValue: bool(m.ignore_value),
    ignoreLease: bool(m.ignore_lease),
  };
}

export function decodeDeleteRange(m: Msg): DeleteRangeRequest {
  return { key: bytes(m.key), rangeEnd: bytes(m.range_end), prevKv: bool(m.prev_kv) };
}

function decodeCompare(m: Msg): Compare {
  const target = enumName(m.target, COMPARE_TARGETS).toLowerCase() as CompareTarget;
  let operand: number | bigint | Uint8Array;
  switch (target) {
    case 'version': operand = int64Value(m.version, 'version'); break;
    case 'create': operand = int64Value(m.create_revision, 'create_revision'); break;
    case 'mod': operand = int64Value(m.mod_revision, 'mod_revision'); break;
    case 'lease': operand = int64Value(m.lease, 'lease'); break;
    default: operand = bytes(m.value);
  }
  return {
    result: enumName(m.result, COMPARE_RESULTS).toLowerCase() as CompareResult,
    target,
    key: bytes(m.key),
    rangeEnd: bytes(m.range_end),
    operand,
  };
}

function decodeRequestOp(m: Msg): RequestOp {
  if (m.request_range) return { range: decodeRange(m.request_range as Msg) };
  if (m.request_put) return { put: decodePut(m.request_put as Msg) };
  if (m.request_delete_range) return { deleteRange: decodeDeleteRange(m.request_delete_range as Msg) };
  if (m.request_txn) return { txn: decodeTxn(m.request_txn as Msg) };
  // An empty RequestOp: etcd treats it as an empty range, which fails on the empty key.
  return { range: { key: EMPTY } };
}

export function decodeTxn(m: Msg): TxnRequest {
  const list = (v: unknown): Msg[] => (Array.isArray(v) ? (v as Msg[]) : []);
  return {
    compare: list(m.compare).map(decodeCompare),
    success: list(m.success).map(decodeRequestOp),
    failure: list(m.failure).map(decodeRequestOp),
  };
}

export function encodeKv(kv: KeyValue): Msg {
  return {
    key: kv.key,
    create_revision: String(kv.createRevision),
    mod_revision: String(kv.modRevision),
    version: String(kv.version),
    value: kv.value,
    lease: String(kv.lease),
  };
}

export function encodeRangeResult(r: RangeResult, header: Header): Msg {
  return { header, kvs: r.kvs.map(encodeKv), more: r.more, count: String(r.count) };
}

export function encodePutResult(r: PutResult, header: Header): Msg {
  return r.prevKv ? { header, prev_kv: encodeKv(r.prevKv) } : { header };
}

export function encodeDeleteRangeResult(r: DeleteRangeResult, header: Header): Msg {
  return { header, deleted: String(r.deleted), prev_kvs: r.prevKvs.map(encodeKv) };
}

function encodeResponseOp(r: ResponseOp, header: Header): Msg {
  if ('range' in r) return { response_range: encodeRangeResult(r.range, header) };
  if ('put' in r) return { response_put: encodePutResult(r.put, header) };
  if ('deleteRange' in r) return { response_delete_range: encodeDeleteRangeResult(r.deleteRange, header) };
  return { response_txn: encodeTxnResult(r.txn, header) };
}

/** etcd fills only the revision in the headers of responses nested inside a Txn. */
export function encodeTxnResult(r: TxnResult, header: Header): Msg {
  const inner: Header = { cluster_id: '0', member_id: '0', revision: header.revision, raft_term: '0' };
  return { header, succeeded: r.succeeded, responses: r.responses.map((x) => encodeResponseOp(x, inner)) };
}

export function encodeEvent(e: WatchEvent): Msg {
  const out: Msg = { type: e.type === 'put' ? 'PUT' : 'DELETE', kv: encodeKv(e.kv) };
  if (e.prevKv) out.prev_kv = encodeKv(e.prevKv);
  return out;
}

/** Approximate encoded size of an event, for fragmenting watch responses. */
export function eventBytes(e: WatchEvent): number {
  const kv = (x: KeyValue | undefined) => (x ? x.key.length + x.value.length + 48 : 0);
  return kv(e.kv) + kv(e.prevKv) + 8;
}
