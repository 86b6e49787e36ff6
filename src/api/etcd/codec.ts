/**
 * Conversions between etcd's protobuf messages (as @grpc/proto-loader objects: snake/etcd-case
 * field names, int64 as decimal strings, enums as their names, bytes as Buffers) and the
 * transport-neutral MVCC types. Shared by the gRPC services and the JSON gateway, which feeds
 * the same object shapes after base64-decoding bytes.
 */
import type {
  Compare, CompareResult, CompareTarget, DeleteRangeRequest, DeleteRangeResult, KeyValue, PutRequest, PutResult,
  RangeRequest, RangeResult, RequestOp, ResponseOp, SortOrder, SortTarget, TxnRequest, TxnResult,
} from '../../mvcc/types.js';
import type { WatchEvent } from '../../mvcc/watch-hub.js';

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

/**
 * An int64 field as a JavaScript number. Values beyond ±2^53 cannot be represented exactly;
 * they are mapped to -1, which no revision, TTL or lease id ever equals, so lookups fail cleanly
 * (a lease id the server never issued is "not found").
 */
export function int(v: unknown): number {
  if (v === undefined || v === null || v === '') return 0;
  if (typeof v === 'number') return Number.isSafeInteger(v) ? v : -1;
  try {
    const b = BigInt(v as string);
    return b > BigInt(Number.MAX_SAFE_INTEGER) || b < -BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(b);
  } catch {
    return -1;
  }
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
    limit: int(m.limit),
    revision: int(m.revision),
    sortOrder: enumName(m.sort_order, SORT_ORDERS).toLowerCase() as SortOrder,
    sortTarget: enumName(m.sort_target, SORT_TARGETS).toLowerCase() as SortTarget,
    serializable: bool(m.serializable),
    keysOnly: bool(m.keys_only),
    countOnly: bool(m.count_only),
    minModRevision: int(m.min_mod_revision),
    maxModRevision: int(m.max_mod_revision),
    minCreateRevision: int(m.min_create_revision),
    maxCreateRevision: int(m.max_create_revision),
  };
}

export function decodePut(m: Msg): PutRequest {
  return {
    key: bytes(m.key),
    value: bytes(m.value),
    lease: int(m.lease),
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
  let operand: number | Uint8Array;
  switch (target) {
    case 'version': operand = int(m.version); break;
    case 'create': operand = int(m.create_revision); break;
    case 'mod': operand = int(m.mod_revision); break;
    case 'lease': operand = int(m.lease); break;
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
