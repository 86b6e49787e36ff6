/**
 * A small read-only reader of bbolt (etcd's backend) files, for importing an etcd snapshot.
 * It follows the on-disk format of go.etcd.io/bbolt (little-endian throughout):
 *
 * ```
 *   page (pageSize bytes; a page with overflow n spans n + 1 pages)
 *   ┌─ header 16 B: id u64 │ flags u16 │ count u16 │ overflow u32 ─┐
 *   │ meta (flags 0x04), pages 0 and 1:                             │
 *   │   magic u32 0xED0CDAED │ version u32 (2) │ pageSize u32 │ flags u32
 *   │   root bucket {root pgid u64, sequence u64} │ freelist u64 │ pgid u64 (high water)
 *   │   txid u64 │ checksum u64 = FNV-1a 64 of the 56 bytes before it
 *   │ branch (0x01): count × {pos u32, ksize u32, pgid u64}; key at element + pos
 *   │ leaf   (0x02): count × {flags u32, pos u32, ksize u32, vsize u32};
 *   │                key at element + pos, value right after it;
 *   │                flags & 0x01: the value is a bucket {root pgid u64, sequence u64},
 *   │                root 0: an inline bucket, whose page follows those 16 bytes in the value
 *   └───────────────────────────────────────────────────────────────┘
 * ```
 *
 * The valid meta page with the higher txid wins (bbolt writes them alternately). Every offset,
 * length and page id read from the file is checked against the file before use; a page is
 * visited at most once per walk and the tree depth is bounded, so a damaged or hostile file is
 * an InvalidArgumentError, never a crash, a hang or an out-of-bounds read.
 */
import { InvalidArgumentError } from '../util/index.js';

const MAGIC = 0xed0cdaed;
const PAGE_HEADER = 16;
const ELEMENT = 16;
const FLAG_BRANCH = 0x01;
const FLAG_LEAF = 0x02;
const FLAG_META = 0x04;
const BUCKET_LEAF = 0x01;
const DEPTH_MAX = 64;

export interface BoltEntry {
  key: Buffer;
  value: Buffer;
  /** The entry is a nested bucket (`value` is its header). */
  bucket: boolean;
}

interface Meta { pageSize: number; root: bigint; highWater: bigint; txid: bigint }

function fnv1a64(b: Buffer): bigint {
  let h = 0xcbf29ce484222325n;
  for (const x of b) h = BigInt.asUintN(64, (h ^ BigInt(x)) * 0x100000001b3n);
  return h;
}

export class BoltFile {
  private readonly meta: Meta;

  /** `data` is the whole file (without etcd's sha256 trailer). Throws InvalidArgumentError if it is not a bbolt file. */
  constructor(private readonly data: Buffer) {
    const metas: Meta[] = [];
    const first = this.readMeta(0, undefined);
    if (first) metas.push(first);
    // Page 1 sits one page size in; without a valid page 0, try the usual page sizes.
    for (const size of first ? [first.pageSize] : [4096, 8192, 16384, 32768, 65536]) {
      const second = this.readMeta(size, size);
      if (second) { metas.push(second); break; }
    }
    if (!metas.length) throw new InvalidArgumentError('not a bbolt file (no valid meta page)');
    this.meta = metas.reduce((a, b) => (b.txid > a.txid ? b : a));
  }

  get pageSize(): number { return this.meta.pageSize; }
  get txid(): bigint { return this.meta.txid; }

  /** The entries of the root bucket (the top-level bucket names), in key order. */
  rootEntries(): BoltEntry[] {
    return [...this.walk(this.meta.root, undefined)];
  }

  /** The entries of the top-level bucket `name`, in key order; undefined if there is none. */
  *bucket(name: string): Generator<BoltEntry> {
    const entry = this.rootEntries().find((e) => e.key.equals(Buffer.from(name)));
    if (!entry) return;
    if (!entry.bucket) throw new InvalidArgumentError(`bbolt: ${name} is a key, not a bucket`);
    yield* this.bucketEntries(entry.value, name);
  }

  /** The entries of a nested bucket, from its 16-byte header value. */
  *bucketEntries(header: Buffer, what: string): Generator<BoltEntry> {
    if (header.length < 16) throw new InvalidArgumentError(`bbolt: bucket ${what} has a ${header.length}-byte header`);
    const root = header.readBigUInt64LE(0);
    if (root === 0n) yield* this.walkPage(header.subarray(16), 0, new Set(), `inline bucket ${what}`);
    else yield* this.walk(root, what);
  }

  private readMeta(offset: number, expectedSize: number | undefined): Meta | undefined {
    if (offset + PAGE_HEADER + 64 > this.data.length) return undefined;
    const flags = this.data.readUInt16LE(offset + 8);
    if (!(flags & FLAG_META)) return undefined;
    const m = offset + PAGE_HEADER;
    if (this.data.readUInt32LE(m) !== MAGIC || this.data.readUInt32LE(m + 4) !== 2) return undefined;
    const pageSize = this.data.readUInt32LE(m + 8);
    if (pageSize < 1024 || pageSize > 1 << 20 || (pageSize & (pageSize - 1)) !== 0) return undefined;
    if (expectedSize !== undefined && pageSize !== expectedSize) return undefined;
    if (fnv1a64(this.data.subarray(m, m + 56)) !== this.data.readBigUInt64LE(m + 56)) return undefined;
    return { pageSize, root: this.data.readBigUInt64LE(m + 16), highWater: this.data.readBigUInt64LE(m + 40), txid: this.data.readBigUInt64LE(m + 48) };
  }

  /** The bytes of page `pgid` with its overflow pages. */
  private page(pgid: bigint, what: string): Buffer {
    const size = this.meta.pageSize;
    if (pgid < 2n || pgid >= this.meta.highWater) throw new InvalidArgumentError(`bbolt: ${what} points at page ${pgid}, outside the file's pages 2..${this.meta.highWater - 1n}`);
    const start = Number(pgid) * size;
    if (start + PAGE_HEADER > this.data.length) throw new InvalidArgumentError(`bbolt: page ${pgid} lies beyond the end of the file (truncated?)`);
    if (this.data.readBigUInt64LE(start) !== pgid) throw new InvalidArgumentError(`bbolt: page ${pgid} carries id ${this.data.readBigUInt64LE(start)}`);
    const overflow = this.data.readUInt32LE(start + 12);
    const end = start + (overflow + 1) * size;
    if (end > this.data.length) throw new InvalidArgumentError(`bbolt: page ${pgid} (+${overflow} overflow) runs past the end of the file (truncated?)`);
    return this.data.subarray(start, end);
  }

  private walk(root: bigint, what: string | undefined): Generator<BoltEntry> {
    return this.walkTree(root, 0, new Set(), what ?? 'the root bucket');
  }

  private *walkTree(pgid: bigint, depth: number, seen: Set<bigint>, what: string): Generator<BoltEntry> {
    if (depth > DEPTH_MAX) throw new InvalidArgumentError(`bbolt: ${what} is deeper than ${DEPTH_MAX} levels`);
    if (seen.has(pgid)) throw new InvalidArgumentError(`bbolt: ${what} visits page ${pgid} twice`);
    seen.add(pgid);
    yield* this.walkPage(this.page(pgid, what), depth, seen, what);
  }

  /** The entries under one page (a leaf's elements, or a branch's children in order). */
  private *walkPage(p: Buffer, depth: number, seen: Set<bigint>, what: string): Generator<BoltEntry> {
    if (p.length < PAGE_HEADER) throw new InvalidArgumentError(`bbolt: ${what}: a page of ${p.length} bytes`);
    const flags = p.readUInt16LE(8);
    const count = p.readUInt16LE(10);
    if (PAGE_HEADER + count * ELEMENT > p.length) throw new InvalidArgumentError(`bbolt: ${what}: ${count} elements do not fit their page`);
    let prev: Buffer | undefined;
    const slice = (at: number, len: number): Buffer => {
      if (at < 0 || len < 0 || at + len > p.length) throw new InvalidArgumentError(`bbolt: ${what}: an element points outside its page`);
      return p.subarray(at, at + len);
    };
    const ordered = (key: Buffer): void => {
      if (prev && Buffer.compare(prev, key) >= 0) throw new InvalidArgumentError(`bbolt: ${what}: keys out of order`);
      prev = key;
    };
    if (flags & FLAG_LEAF) {
      for (let i = 0; i < count; i++) {
        const e = PAGE_HEADER + i * ELEMENT;
        const eflags = p.readUInt32LE(e);
        const pos = p.readUInt32LE(e + 4);
        const ksize = p.readUInt32LE(e + 8);
        const vsize = p.readUInt32LE(e + 12);
        const key = slice(e + pos, ksize);
        const value = slice(e + pos + ksize, vsize);
        ordered(key);
        yield { key, value, bucket: (eflags & BUCKET_LEAF) !== 0 };
      }
    } else if (flags & FLAG_BRANCH) {
      for (let i = 0; i < count; i++) {
        const e = PAGE_HEADER + i * ELEMENT;
        const pos = p.readUInt32LE(e);
        const ksize = p.readUInt32LE(e + 4);
        const child = p.readBigUInt64LE(e + 8);
        ordered(slice(e + pos, ksize));
        yield* this.walkTree(child, depth + 1, seen, what);
      }
    } else {
      throw new InvalidArgumentError(`bbolt: ${what}: a page with flags 0x${flags.toString(16)} where a branch or leaf belongs`);
    }
  }
}
