/**
 * One document's records: two parallel columns sorted by timestamp.
 *
 * ```
 *   index   0      1      2      …  len-1 | spare capacity
 *   ts    [ 100 ][ 150 ][ 200 ] … [ 900 ] | ? ? ?        Float64Array, strictly ascending
 *   data  [ "a" ][ "b" ][ "c" ] … [ "z" ]                string[], same length as the live prefix
 * ```
 *
 * Invariants: `ts[0..len)` is strictly ascending (record identity is the timestamp, so a second
 * insert at the same `ts` replaces `data`); `data.length === len`.
 *
 * Appends in timestamp order are O(1) amortised; out-of-order inserts binary-search their slot and
 * shift the tail. Lookups at a timestamp are O(log n).
 *
 * Snapshots: `pin()` hands out a read-only view of the live prefix without copying. While pinned,
 * any mutation that would rewrite an index below the pinned length first copies the columns
 * (copy-on-write); appends write past the pinned length and never copy. `unpin(view)` releases it.
 */
export interface SeriesView {
  /** Timestamps; only indexes `[0, len)` are part of the view. Never mutate. */
  readonly ts: Float64Array;
  /** Data strings; only indexes `[0, len)` are part of the view. Never mutate. */
  readonly data: readonly string[];
  readonly len: number;
}

const CAPACITY_MIN = 4;

export class Series {
  private tsCol: Float64Array;
  private dataCol: string[];
  private pinnedLen = 0;
  /** Sum of `data[i].length` over live records (UTF-16 code units), for memory accounting. */
  dataChars = 0;

  constructor(capacity = CAPACITY_MIN) {
    this.tsCol = new Float64Array(Math.max(CAPACITY_MIN, capacity));
    this.dataCol = [];
  }

  /** Number of records. */
  get length(): number { return this.dataCol.length; }

  tsAt(i: number): number { return this.tsCol[i]!; }
  dataAt(i: number): string { return this.dataCol[i]!; }

  /**
   * Inserts a record or replaces the data of the record with the same `ts`.
   * Returns 1 when a record was added, 0 when one was replaced.
   */
  upsert(ts: number, data: string): 0 | 1 {
    const len = this.dataCol.length;
    if (len === 0 || ts > this.tsCol[len - 1]!) { // hot path: in-order append
      this.ensureCapacity(len + 1);
      this.tsCol[len] = ts;
      this.dataCol.push(data);
      this.dataChars += data.length;
      return 1;
    }
    const i = this.lowerBound(ts);
    if (i < len && this.tsCol[i] === ts) {
      this.beforeRewrite(i);
      this.dataChars += data.length - this.dataCol[i]!.length;
      this.dataCol[i] = data;
      return 0;
    }
    this.beforeRewrite(i);
    this.ensureCapacity(len + 1);
    this.tsCol.copyWithin(i + 1, i, len);
    this.tsCol[i] = ts;
    this.dataCol.splice(i, 0, data);
    this.dataChars += data.length;
    return 1;
  }

  /** Index of the first record with `ts >= t` (`length` if none). */
  lowerBound(t: number): number {
    let lo = 0;
    let hi = this.dataCol.length;
    const col = this.tsCol;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (col[mid]! < t) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  /** Index of the first record with `ts > t` (`length` if none). */
  upperBound(t: number): number {
    let lo = 0;
    let hi = this.dataCol.length;
    const col = this.tsCol;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (col[mid]! <= t) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  /** Index of the record with the greatest `ts <= t`, or -1. O(1) when `t` is at or past the newest record. */
  latestAtOrBefore(t: number): number {
    const len = this.dataCol.length;
    if (len === 0) return -1;
    if (t >= this.tsCol[len - 1]!) return len - 1;
    return this.upperBound(t) - 1;
  }

  /** Deletes the record whose timestamp equals `ts`. Returns the number deleted (0 or 1). */
  deleteExact(ts: number): number {
    const i = this.lowerBound(ts);
    if (i >= this.dataCol.length || this.tsCol[i] !== ts) return 0;
    return this.deleteIndexRange(i, i + 1);
  }

  /** Deletes records with `from <= ts <= to`. Returns the number deleted. */
  deleteRange(from: number, to: number): number {
    if (from > to) return 0;
    return this.deleteIndexRange(this.lowerBound(from), this.upperBound(to));
  }

  /** A zero-copy view of the current records for a snapshot writer; release it with `unpin`. */
  pin(): SeriesView {
    const len = this.dataCol.length;
    this.pinnedLen = Math.max(this.pinnedLen, len);
    return { ts: this.tsCol, data: this.dataCol, len };
  }

  /** Releases a view from `pin()`. Views of columns that were already copied away are ignored. */
  unpin(view: SeriesView): void {
    if (view.ts === this.tsCol && view.data === this.dataCol) this.pinnedLen = 0;
  }

  private deleteIndexRange(lo: number, hi: number): number {
    const n = hi - lo;
    if (n <= 0) return 0;
    this.beforeRewrite(lo);
    const len = this.dataCol.length;
    for (let i = lo; i < hi; i++) this.dataChars -= this.dataCol[i]!.length;
    this.tsCol.copyWithin(lo, hi, len);
    this.dataCol.splice(lo, n);
    // Give memory back when the column is mostly empty.
    if (this.tsCol.length > CAPACITY_MIN * 4 && this.dataCol.length < this.tsCol.length / 4) {
      this.tsCol = this.tsCol.slice(0, Math.max(CAPACITY_MIN, this.dataCol.length * 2));
    }
    return n;
  }

  /** Copy-on-write: a pinned view must keep seeing its records when index `i` is rewritten. */
  private beforeRewrite(i: number): void {
    if (this.pinnedLen === 0 || i >= this.pinnedLen) return;
    this.tsCol = this.tsCol.slice();
    this.dataCol = this.dataCol.slice();
    this.pinnedLen = 0;
  }

  private ensureCapacity(n: number): void {
    if (n <= this.tsCol.length) return;
    let cap = this.tsCol.length * 2;
    while (cap < n) cap *= 2;
    const next = new Float64Array(cap);
    next.set(this.tsCol.subarray(0, this.dataCol.length));
    this.tsCol = next;
  }
}
