/**
 * Keys as JavaScript strings and an ordered set of them.
 *
 * A key's bytes map one-to-one onto a latin1 string (each char code 0–255 is one byte), and
 * JavaScript compares strings by UTF-16 code units, so string order equals memcmp byte order.
 * This lets the index use plain `Map`s and `<` comparisons.
 */
export function bytesToKey(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

export function keyToBytes(k: string): Uint8Array {
  return new Uint8Array(Buffer.from(k, 'latin1'));
}

/** A resolved key range: one key, or `[start, end)` with `end` undefined meaning "to the last key". */
export interface KeyBounds {
  start: string;
  end: string | undefined;
  single: boolean;
}

/**
 * Applies etcd's range conventions: empty `rangeEnd` → the single key; `rangeEnd` = "\0" →
 * every key ≥ `key`; `key` = "\0" with `rangeEnd` = "\0" → every key.
 */
export function resolveRange(key: Uint8Array, rangeEnd: Uint8Array | undefined): KeyBounds {
  const start = bytesToKey(key);
  if (!rangeEnd || rangeEnd.length === 0) return { start, end: undefined, single: true };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) {
    return { start: key.length === 1 && key[0] === 0 ? '' : start, end: undefined, single: false };
  }
  return { start, end: bytesToKey(rangeEnd), single: false };
}

/** The smallest key greater than every key with prefix `p` ("\0" if there is none: all keys). */
export function prefixEnd(p: Uint8Array): Uint8Array {
  const out = new Uint8Array(p);
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i]! < 0xff) {
      out[i]!++;
      return out.slice(0, i + 1);
    }
  }
  return new Uint8Array([0]);
}

/**
 * A sorted set of keys, kept as a list of sorted chunks (a one-level B+tree):
 *
 * ```
 *   chunks: [ "a" "ab" … "f" ] [ "g" … "m" ] [ "n" … "zz" ]     each 1..chunkKeysMax keys
 *   first:  [ "a",               "g",          "n" ]            first key of each chunk
 * ```
 *
 * Lookups binary-search `first`, then the chunk: O(log n). An insert or delete moves at most
 * one chunk's keys (a full chunk splits in two, an empty one is dropped), so it is
 * O(chunkKeysMax + n / chunkKeysMax) rather than O(n): about 1,000 pointer moves at a million
 * keys. Range scans walk chunks in order.
 */
export class OrderedKeys {
  private chunks: string[][] = [];
  private first: string[] = [];
  private count = 0;

  constructor(private readonly chunkKeysMax = 1024) {}

  get size(): number { return this.count; }

  add(k: string): void {
    if (this.chunks.length === 0) {
      this.chunks.push([k]);
      this.first.push(k);
      this.count = 1;
      return;
    }
    const c = this.chunkFor(k);
    const chunk = this.chunks[c]!;
    const i = lowerBound(chunk, k);
    if (chunk[i] === k) return;
    chunk.splice(i, 0, k);
    this.count++;
    if (i === 0) this.first[c] = k;
    if (chunk.length > this.chunkKeysMax) {
      const tail = chunk.splice(chunk.length >>> 1);
      this.chunks.splice(c + 1, 0, tail);
      this.first.splice(c + 1, 0, tail[0]!);
    }
  }

  delete(k: string): void {
    if (this.chunks.length === 0) return;
    const c = this.chunkFor(k);
    const chunk = this.chunks[c]!;
    const i = lowerBound(chunk, k);
    if (chunk[i] !== k) return;
    chunk.splice(i, 1);
    this.count--;
    if (chunk.length === 0) {
      this.chunks.splice(c, 1);
      this.first.splice(c, 1);
    } else if (i === 0) {
      this.first[c] = chunk[0]!;
    }
  }

  clear(): void {
    this.chunks = [];
    this.first = [];
    this.count = 0;
  }

  /** Keys within `b`, ascending. The set must not change while the generator runs. */
  *range(b: KeyBounds): Generator<string> {
    if (this.chunks.length === 0) return;
    let c = this.chunkFor(b.start);
    let i = lowerBound(this.chunks[c]!, b.start);
    if (b.single) {
      if (this.chunks[c]![i] === b.start) yield b.start;
      return;
    }
    for (; c < this.chunks.length; c++, i = 0) {
      const chunk = this.chunks[c]!;
      for (; i < chunk.length; i++) {
        const k = chunk[i]!;
        if (b.end !== undefined && k >= b.end) return;
        yield k;
      }
    }
  }

  /** The chunk that holds `k` if present: the last whose first key is ≤ k (or chunk 0). */
  private chunkFor(k: string): number {
    const i = lowerBound(this.first, k);
    if (i < this.first.length && this.first[i] === k) return i;
    return Math.max(0, i - 1);
  }
}

function lowerBound(a: string[], k: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
