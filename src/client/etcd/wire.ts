/**
 * Encoding of requests to and decoding of answers from the etcd v3 wire messages (as
 * proto-loader objects with LOADER_OPTIONS: snake_case fields, int64 as strings, enums as names).
 */
import { InvalidArgumentError } from '../../util/index.js';
import { fromWireKv, leaseId, prefixEnd, safeInt, toBuffer } from './bytes.js';
import type { Compare, DeleteOptions, DeleteResult, KeyValue, PutOptions, PutResult, RangeOptions, RangeResult, TxnOp, TxnOpResult, TxnRequest, TxnResult } from './types.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Wire = Record<string, any>;

function rangeEndOf(key: Buffer, o: { prefix?: boolean; rangeEnd?: string | Uint8Array } | undefined): Buffer | undefined {
  if (o?.rangeEnd !== undefined) return toBuffer(o.rangeEnd);
  if (o?.prefix) return prefixEnd(key);
  return undefined;
}

function nonNegative(n: number | undefined, field: string): string {
  const v = n ?? 0;
  if (!Number.isSafeInteger(v) || v < 0) throw new InvalidArgumentError(`${field} must be a non-negative integer, got ${v}`);
  return String(v);
}

function leaseOf(lease: string | undefined): string {
  if (lease === undefined) return '0';
  if (!/^\d+$/.test(lease)) throw new InvalidArgumentError(`lease id must be a decimal integer, got ${lease}`);
  return lease;
}

export function encodeRange(key: string | Uint8Array, o: RangeOptions = {}): Wire {
  const k = toBuffer(key);
  const req: Wire = {
    key: k,
    limit: nonNegative(o.limit, 'limit'),
    revision: nonNegative(o.revision, 'revision'),
    keys_only: o.keysOnly ?? false,
    count_only: o.countOnly ?? false,
    serializable: o.serializable ?? false,
  };
  const end = rangeEndOf(k, o);
  if (end) req.range_end = end;
  if (o.sort) { req.sort_target = o.sort.target; req.sort_order = o.sort.order; }
  return req;
}

export function encodePut(key: string | Uint8Array, value: string | Uint8Array, o: PutOptions = {}): Wire {
  return { key: toBuffer(key), value: toBuffer(value), lease: leaseOf(o.lease), prev_kv: o.prevKv ?? false };
}

export function encodeDelete(key: string | Uint8Array, o: DeleteOptions = {}): Wire {
  const k = toBuffer(key);
  const req: Wire = { key: k, prev_kv: o.prevKv ?? false };
  const end = rangeEndOf(k, o);
  if (end) req.range_end = end;
  return req;
}

const RESULT: Record<Compare['op'], string> = { '==': 'EQUAL', '!=': 'NOT_EQUAL', '>': 'GREATER', '<': 'LESS' };

export function encodeCompare(c: Compare): Wire {
  const w: Wire = { key: toBuffer(c.key), result: RESULT[c.op] };
  if (c.rangeEnd !== undefined) w.range_end = toBuffer(c.rangeEnd);
  switch (c.target) {
    case 'value': w.target = 'VALUE'; w.value = toBuffer(c.value); break;
    case 'version': w.target = 'VERSION'; w.version = nonNegative(c.value, 'version'); break;
    case 'createRevision': w.target = 'CREATE'; w.create_revision = nonNegative(c.value, 'create_revision'); break;
    case 'modRevision': w.target = 'MOD'; w.mod_revision = nonNegative(c.value, 'mod_revision'); break;
    case 'lease': w.target = 'LEASE'; w.lease = leaseOf(c.value); break;
  }
  return w;
}

export function encodeOp(op: TxnOp): Wire {
  switch (op.type) {
    case 'put': return { request_put: encodePut(op.key, op.value, op.options) };
    case 'delete': return { request_delete_range: encodeDelete(op.key, op.options) };
    case 'range': return { request_range: encodeRange(op.key, op.options) };
  }
}

export function encodeTxn(t: TxnRequest): Wire {
  return {
    compare: (t.compare ?? []).map(encodeCompare),
    success: (t.success ?? []).map(encodeOp),
    failure: (t.failure ?? []).map(encodeOp),
  };
}

export function revisionOf(res: Wire): number {
  return safeInt(res.header?.revision, 'header.revision');
}

export function decodeRange(res: Wire): RangeResult {
  return {
    kvs: ((res.kvs ?? []) as Wire[]).map(fromWireKv),
    more: Boolean(res.more),
    count: safeInt(res.count, 'count'),
    revision: revisionOf(res),
    clusterId: String(res.header?.cluster_id ?? '0'),
    memberId: String(res.header?.member_id ?? '0'),
  };
}

function prevKvOf(p: Wire | null | undefined): KeyValue | undefined {
  return p && p.key && p.key.length > 0 ? fromWireKv(p) : undefined;
}

export function decodePut(res: Wire): PutResult {
  const prevKv = prevKvOf(res.prev_kv);
  return prevKv ? { revision: revisionOf(res), prevKv } : { revision: revisionOf(res) };
}

export function decodeDelete(res: Wire): DeleteResult {
  return { revision: revisionOf(res), deleted: safeInt(res.deleted, 'deleted'), prevKvs: ((res.prev_kvs ?? []) as Wire[]).map(fromWireKv) };
}

export function decodeTxn(res: Wire): TxnResult {
  const responses: TxnOpResult[] = ((res.responses ?? []) as Wire[]).map((r) => {
    if (r.response_range) { const d = decodeRange(r.response_range); return { type: 'range', kvs: d.kvs, more: d.more, count: d.count }; }
    if (r.response_put) { const p = prevKvOf(r.response_put.prev_kv); return p ? { type: 'put', prevKv: p } : { type: 'put' }; }
    if (r.response_delete_range) { const d = decodeDelete(r.response_delete_range); return { type: 'delete', deleted: d.deleted, prevKvs: d.prevKvs }; }
    throw new InvalidArgumentError('etcd answer: nested txn responses are not supported');
  });
  return { succeeded: Boolean(res.succeeded), revision: revisionOf(res), responses };
}

export { leaseId };
