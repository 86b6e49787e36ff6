/**
 * One document's records, packed into three columns sorted by timestamp:
 *
 * ```
 *   index    0        1        2      …   n-1     | spare capacity
 *   ts     [ 100  ][ 150  ][ 200  ] … [ 900  ]    Float64Array, strictly ascending
 *   offs   [0][ 12   ][ 20    ][ 31   ] … [used]   Float64Array, n+1 entries; record i's data is
 *   bytes  |"{\"t\":1}…"|"abc…"|…                  bytes[offs[i], offs[i+1]) in UTF-8 (one Buffer)
 * ```
 *
 * Packing the data strings into one buffer per document costs ~16 bytes per record (timestamp +
 * offset) instead of a V8 string header and pointer each, keeps records out of the garbage
 * collector's way, and lets snapshots copy a document's data with one `memcpy`.
 *
 * Invariants: `ts[0..n)` strictly ascending (record identity is the timestamp: a second insert at
 * the same `ts` replaces the data); `offs[0] = 0`, `offs` non-decreasing, `offs[n] = used bytes`.
 *
 * In-order appends are O(1) amortised; out-of-order inserts, replacements and deletes shift the
 * tail (O(n) memmove). Lookups at a timestamp are O(log n), O(1) at or past the newest record.
 *
 * Snapshots: `pin()` returns a zero-copy view of the first `len` records. While pinned, a
 * mutation that would rewrite anything below the pinned length first copies the columns
 * (copy-on-write); appends write past the pinned region and never copy. `unpin(view)` releases it.
 */
export interface SeriesView {
  /** Timestamps; only `[0, len)` belong to the view. Never mutate. */
  readonly ts: Float64Array;
  /** Data offsets; `[0, len]` belong to the view. Never mutate. */
  readonly offs: Float64Array;
  /** UTF-8 data; `[0, offs[len])` belongs to the view. Never mutate. */
  readonly bytes: Buffer;
  readonly len: number;
}

const RECORDS_MIN = 4;
const BYTES_MIN = 64;

export class Series {
  private tsCol: Float64Array;
  private offCol: Float64Array;
  private bytes: Buffer;
  private n = 0;
  private pinnedLen = 0;

  constructor() {
    this.tsCol = new Float64Array(RECORDS_MIN);
    this.offCol = new Float64Array(RECORDS_MIN + 1);
    this.bytes = Buffer.allocUnsafeSlow(BYTES_MIN);
  }

  /** Number of records. */
  get length(): number { return this.n; }

  /** UTF-8 bytes of all data held. */
  get dataBytes(): number { return this.offCol[this.n]!; }

  /** Bytes allocated for the columns (capacity included), for memory accounting. */
  get allocatedBytes(): number { return this.tsCol.byteLength + this.offCol.byteLength + this.bytes.length; }

  tsAt(i: number): number { return this.tsCol[i]!; }

  dataAt(i: number): string { return this.bytes.toString('utf8', this.offCol[i]!, this.offCol[i + 1]!); }

  /**
   * Inserts a record or replaces the data of the record with the same `ts`.
   * Returns 1 when a record was added, 0 when one was replaced.
   */
  upsert(ts: number, data: string): 0 | 1 {
    const n = this.n;
    const used = this.offCol[n]!;
    if (n === 0 || ts > this.tsCol[n - 1]!) { // hot path: in-order append
      this.ensureRecords(n + 1);
      // One native call when the worst case (3 bytes per UTF-16 unit) fits in the spare capacity.
      let dlen: number;
      if (this.bytes.length - used >= data.length * 3) {
        dlen = this.bytes.write(data, used, 'utf8');
      } else {
        dlen = Buffer.byteLength(data, 'utf8');
        this.ensureBytes(used + dlen);
        this.bytes.write(data, used, dlen, 'utf8');
      }
      this.tsCol[n] = ts;
      this.offCol[n + 1] = used + dlen;
      this.n = n + 1;
      return 1;
    }
    const dlen = Buffer.byteLength(data, 'utf8');
    const i = this.lowerBound(ts);
    this.beforeRewrite(i);
    const offs = this.offCol;
    if (i < n && this.tsCol[i] === ts) {
      const start = offs[i]!;
      const delta = dlen - (offs[i + 1]! - start);
      if (delta !== 0) {
        this.ensureBytes(used + delta);
        this.bytes.copyWithin(start + dlen, offs[i + 1]!, used);
        for (let k = i + 1; k <= n; k++) this.offCol[k]! += delta;
      }
      this.bytes.write(data, start, dlen, 'utf8');
      return 0;
    }
    this.ensureRecords(n + 1);
    this.ensureBytes(used + dlen);
    const o = this.offCol;
    const start = o[i]!;
    this.tsCol.copyWithin(i + 1, i, n);
    this.tsCol[i] = ts;
    this.bytes.copyWithin(start + dlen, start, used);
    this.bytes.write(data, start, dlen, 'utf8');
    o.copyWithin(i + 2, i + 1, n + 1);
    for (let k = i + 2; k <= n + 1; k++) o[k]! += dlen;
    o[i + 1] = start + dlen;
    this.n = n + 1;
    return 1;
  }

  /**
   * Appends `count` records whose timestamps are ascending and newer than every record held
   * (used to load snapshots): `tsAt(k)` and `lenAt(k)` describe record k; `src[srcStart…]` holds
   * their UTF-8 data back to back. Returns false, changing nothing, if the run is out of order.
   */
  appendRun(count: number, tsAt: (k: number) => number, lenAt: (k: number) => number, src: Buffer, srcStart: number): boolean {
    let prev = this.n > 0 ? this.tsCol[this.n - 1]! : -Infinity;
    let total = 0;
    for (let k = 0; k < count; k++) {
      const t = tsAt(k);
      if (!(t > prev)) return false;
      prev = t;
      total += lenAt(k);
    }
    this.ensureRecords(this.n + count);
    let used = this.offCol[this.n]!;
    this.ensureBytes(used + total);
    src.copy(this.bytes, used, srcStart, srcStart + total);
    for (let k = 0; k < count; k++) {
      this.tsCol[this.n] = tsAt(k);
      used += lenAt(k);
      this.offCol[++this.n] = used;
    }
    return true;
  }

  /** Index of the first record with `ts >= t` (`length` if none). */
  lowerBound(t: number): number {
    let lo = 0;
    let hi = this.n;
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
    let hi = this.n;
    const col = this.tsCol;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (col[mid]! <= t) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  /** Index of the record with the greatest `ts <= t`, or -1. O(1) when `t` is at or past the newest record. */
  latestAtOrBefore(t: number): number {
    const n = this.n;
    if (n === 0) return -1;
    if (t >= this.tsCol[n - 1]!) return n - 1;
    return this.upperBound(t) - 1;
  }

  /** Deletes the record whose timestamp equals `ts`. Returns the number deleted (0 or 1). */
  deleteExact(ts: number): number {
    const i = this.lowerBound(ts);
    if (i >= this.n || this.tsCol[i] !== ts) return 0;
    return this.deleteIndexRange(i, i + 1);
  }

  /** Deletes records with `from <= ts <= to`. Returns the number deleted. */
  deleteRange(from: number, to: number): number {
    if (from > to) return 0;
    return this.deleteIndexRange(this.lowerBound(from), this.upperBound(to));
  }

  /** A zero-copy view of the current records for a snapshot writer; release it with `unpin`. */
  pin(): SeriesView {
    this.pinnedLen = Math.max(this.pinnedLen, this.n);
    return { ts: this.tsCol, offs: this.offCol, bytes: this.bytes, len: this.n };
  }

  /** Releases a view from `pin()`. Views of columns that were already copied away are ignored. */
  unpin(view: SeriesView): void {
    if (view.ts === this.tsCol && view.offs === this.offCol && view.bytes === this.bytes) this.pinnedLen = 0;
  }

  private deleteIndexRange(lo: number, hi: number): number {
    const count = hi - lo;
    if (count <= 0) return 0;
    this.beforeRewrite(lo);
    const n = this.n;
    const o = this.offCol;
    const removed = o[hi]! - o[lo]!;
    this.bytes.copyWithin(o[lo]!, o[hi]!, o[n]!);
    this.tsCol.copyWithin(lo, hi, n);
    o.copyWithin(lo + 1, hi + 1, n + 1);
    const m = n - count;
    for (let k = lo + 1; k <= m; k++) o[k]! -= removed;
    this.n = m;
    this.shrinkIfSparse();
    return count;
  }

  /** Gives memory back when a column is mostly empty after deletes. */
  private shrinkIfSparse(): void {
    const n = this.n;
    if (this.tsCol.length > RECORDS_MIN * 4 && n < this.tsCol.length / 4) {
      const cap = Math.max(RECORDS_MIN, n * 2);
      this.tsCol = this.tsCol.slice(0, cap);
      const offs = new Float64Array(cap + 1);
      offs.set(this.offCol.subarray(0, n + 1));
      this.offCol = offs;
    }
    const used = this.offCol[n]!;
    if (this.bytes.length > BYTES_MIN * 4 && used < this.bytes.length / 4) {
      const next = Buffer.allocUnsafeSlow(Math.max(BYTES_MIN, used * 2));
      this.bytes.copy(next, 0, 0, used);
      this.bytes = next;
    }
  }

  /** Copy-on-write: a pinned view must keep seeing its records when index `i` is rewritten. */
  private beforeRewrite(i: number): void {
    if (this.pinnedLen === 0 || i >= this.pinnedLen) return;
    this.tsCol = this.tsCol.slice();
    this.offCol = this.offCol.slice();
    const copy = Buffer.allocUnsafeSlow(this.bytes.length);
    this.bytes.copy(copy, 0, 0, this.offCol[this.n]!);
    this.bytes = copy;
    this.pinnedLen = 0;
  }

  private ensureRecords(n: number): void {
    if (n <= this.tsCol.length) return;
    let cap = this.tsCol.length * 2;
    while (cap < n) cap *= 2;
    const ts = new Float64Array(cap);
    ts.set(this.tsCol.subarray(0, this.n));
    this.tsCol = ts;
    const offs = new Float64Array(cap + 1);
    offs.set(this.offCol.subarray(0, this.n + 1));
    this.offCol = offs;
  }

  private ensureBytes(n: number): void {
    if (n <= this.bytes.length) return;
    let cap = this.bytes.length * 2;
    while (cap < n) cap *= 2;
    const next = Buffer.allocUnsafeSlow(cap);
    this.bytes.copy(next, 0, 0, this.offCol[this.n]!);
    this.bytes = next;
  }
}
