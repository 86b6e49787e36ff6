import { ClosedError, InvalidArgumentError } from '../util/index.js';
import { BUCKET_NAME, compareBytes, type KeyValue, type RangeOptions, type StateOp, type StateStore } from './state-store.js';

/**
 * An in-memory StateStore for tests and simulations. Same contract as the LMDB store, minus
 * persistence: `sync()` resolves at once. Buckets are sorted arrays searched by binary search.
 */
export class MemoryStateStore implements StateStore {
  private applied = 0;
  private readonly data = new Map<string, KeyValue[]>();
  private closed = false;
  private snapshotForBatch: { applied: number; data: Map<string, KeyValue[]> } | undefined;

  appliedIndex(): number { this.check(); return this.applied; }

  get(bucket: string, key: Uint8Array): Uint8Array | undefined {
    const rows = this.rows(bucket);
    const i = lowerBound(rows, key);
    return i < rows.length && compareBytes(rows[i]!.key, key) === 0 ? rows[i]!.value : undefined;
  }

  range(bucket: string, opts: RangeOptions = {}): KeyValue[] {
    const rows = this.rows(bucket);
    const lo = opts.start ? lowerBound(rows, opts.start) : 0;
    const hi = opts.end ? lowerBound(rows, opts.end) : rows.length;
    let slice = rows.slice(lo, Math.max(lo, hi));
    if (opts.reverse) slice = slice.reverse();
    if (opts.limit !== undefined && opts.limit > 0) slice = slice.slice(0, opts.limit);
    return slice.map((r) => ({ key: r.key, value: r.value }));
  }

  count(bucket: string, opts: Omit<RangeOptions, 'limit' | 'reverse'> = {}): number {
    const rows = this.rows(bucket);
    const lo = opts.start ? lowerBound(rows, opts.start) : 0;
    const hi = opts.end ? lowerBound(rows, opts.end) : rows.length;
    return Math.max(0, hi - lo);
  }

  apply(index: number, ops: readonly StateOp[]): boolean {
    this.check();
    if (index <= this.applied) return false;
    for (const op of ops) validateOp(op);
    for (const op of ops) {
      const rows = this.rows(op.bucket, true);
      const i = lowerBound(rows, op.key);
      const found = i < rows.length && compareBytes(rows[i]!.key, op.key) === 0;
      if (op.op === 'put') {
        const row = { key: Uint8Array.from(op.key), value: Uint8Array.from(op.value) };
        if (found) rows[i] = row; else rows.splice(i, 0, row);
      } else if (found) {
        rows.splice(i, 1);
      }
    }
    this.applied = index;
    return true;
  }

  batch<T>(fn: () => T): T {
    this.check();
    if (this.snapshotForBatch) return fn();
    this.snapshotForBatch = { applied: this.applied, data: new Map([...this.data].map(([k, rows]) => [k, [...rows]])) };
    try {
      return fn();
    } catch (err) {
      this.applied = this.snapshotForBatch.applied;
      this.data.clear();
      for (const [k, rows] of this.snapshotForBatch.data) this.data.set(k, rows);
      throw err;
    } finally {
      this.snapshotForBatch = undefined;
    }
  }

  async sync(): Promise<void> { this.check(); }

  sizeBytes(): number {
    let n = 0;
    for (const rows of this.data.values()) for (const r of rows) n += r.key.length + r.value.length;
    return n;
  }

  buckets(): string[] { return [...this.data.keys()].filter((b) => this.data.get(b)!.length > 0).sort(); }

  async restore(index: number, data: ReadonlyMap<string, KeyValue[]>): Promise<void> {
    this.check();
    this.data.clear();
    for (const [bucket, rows] of data) {
      checkBucket(bucket);
      this.data.set(bucket, [...rows].map((r) => ({ key: Uint8Array.from(r.key), value: Uint8Array.from(r.value) })).sort((a, b) => compareBytes(a.key, b.key)));
    }
    this.applied = index;
  }

  async close(): Promise<void> { this.closed = true; }

  private rows(bucket: string, create = false): KeyValue[] {
    this.check();
    checkBucket(bucket);
    let rows = this.data.get(bucket);
    if (!rows) {
      rows = [];
      if (create) this.data.set(bucket, rows);
    }
    return rows;
  }

  private check(): void { if (this.closed) throw new ClosedError('state store'); }
}

function lowerBound(rows: KeyValue[], key: Uint8Array): number {
  let lo = 0, hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBytes(rows[mid]!.key, key) < 0) lo = mid + 1; else hi = mid;
  }
  return lo;
}

export function checkBucket(bucket: string): void {
  if (!BUCKET_NAME.test(bucket)) throw new InvalidArgumentError(`invalid bucket name ${JSON.stringify(bucket)}`);
}

export function validateOp(op: StateOp): void {
  checkBucket(op.bucket);
  if (op.key.length === 0) throw new InvalidArgumentError('empty key');
}
