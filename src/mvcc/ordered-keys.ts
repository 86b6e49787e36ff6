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
 * A sorted set of keys: binary search for lookups and range scans, O(n) insert and delete
 * (an array splice; fine to a few million keys, where a B-tree would take over).
 */
export class OrderedKeys {
  private keys: string[] = [];

  get size(): number { return this.keys.length; }

  add(k: string): void {
    const i = this.lowerBound(k);
    if (this.keys[i] !== k) this.keys.splice(i, 0, k);
  }

  delete(k: string): void {
    const i = this.lowerBound(k);
    if (this.keys[i] === k) this.keys.splice(i, 1);
  }

  clear(): void { this.keys = []; }

  /** Keys within `b`, ascending. */
  *range(b: KeyBounds): Generator<string> {
    let i = this.lowerBound(b.start);
    if (b.single) {
      if (this.keys[i] === b.start) yield b.start;
      return;
    }
    for (; i < this.keys.length; i++) {
      const k = this.keys[i]!;
      if (b.end !== undefined && k >= b.end) return;
      yield k;
    }
  }

  private lowerBound(k: string): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.keys[mid]! < k) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
