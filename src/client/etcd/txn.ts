/**
 * Small typed builders for txn guards and operations, and a fluent `Txn`:
 *
 *   await client.txn()
 *     .if(compare.createRevision(lock, '==', 0), compare.value(owner, '==', me))
 *     .then(op.put(lock, me, { lease }))
 *     .else(op.get(lock))
 *     .commit();
 *
 * `compare.createRevision(k, '==', 0)` is "k does not exist"; `modRevision(k, '==', r)` is the
 * optimistic-concurrency guard on a record read at mod revision r.
 */
import type { Bytes, Compare, CompareOp, DeleteOptions, PutOptions, RangeOptions, TxnOp, TxnRequest, TxnResult } from './types.js';

export const compare = {
  value: (key: Bytes, op: CompareOp, value: Bytes): Compare => ({ target: 'value', key, op, value }),
  version: (key: Bytes, op: CompareOp, value: number): Compare => ({ target: 'version', key, op, value }),
  createRevision: (key: Bytes, op: CompareOp, value: number): Compare => ({ target: 'createRevision', key, op, value }),
  modRevision: (key: Bytes, op: CompareOp, value: number): Compare => ({ target: 'modRevision', key, op, value }),
  lease: (key: Bytes, op: CompareOp, value: string): Compare => ({ target: 'lease', key, op, value }),
  /** `key` does not exist (its create revision is 0). */
  absent: (key: Bytes): Compare => ({ target: 'createRevision', key, op: '==', value: 0 }),
  /** `key` exists. */
  present: (key: Bytes): Compare => ({ target: 'createRevision', key, op: '>', value: 0 }),
};

export const op = {
  put: (key: Bytes, value: Bytes, options?: PutOptions): TxnOp => (options ? { type: 'put', key, value, options } : { type: 'put', key, value }),
  putJson: (key: Bytes, value: unknown, options?: PutOptions): TxnOp => op.put(key, JSON.stringify(value), options),
  delete: (key: Bytes, options?: DeleteOptions): TxnOp => (options ? { type: 'delete', key, options } : { type: 'delete', key }),
  get: (key: Bytes, options?: RangeOptions): TxnOp => (options ? { type: 'range', key, options } : { type: 'range', key }),
};

/** A txn being built; `commit()` sends it once. */
export class Txn {
  private readonly req: Required<TxnRequest> = { compare: [], success: [], failure: [] };
  constructor(private readonly send: (req: TxnRequest) => Promise<TxnResult>) {}
  if(...cmps: Compare[]): this { this.req.compare.push(...cmps); return this; }
  then(...ops: TxnOp[]): this { this.req.success.push(...ops); return this; }
  else(...ops: TxnOp[]): this { this.req.failure.push(...ops); return this; }
  /** The request as built (for logging or for adding a fence). */
  request(): Required<TxnRequest> { return this.req; }
  commit(): Promise<TxnResult> { return this.send(this.req); }
}
