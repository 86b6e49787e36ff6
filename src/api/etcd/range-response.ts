/**
 * Range responses encoded straight to protobuf bytes, row by row, with a byte budget.
 *
 * The general path (codec.ts objects → proto-loader/protobufjs) holds every row three or four
 * times over (KeyValue, the proto-shaped object with decimal strings, protobufjs's message and
 * writer ops, the output): one 100k-key Range of 9.8 MB cost ~175 MB. Here each KeyValue read
 * from the store is appended to 64 KiB chunks at once and dropped, so memory is about the
 * response size. The gRPC server hands the finished Buffer to grpc-js through a pass-through
 * serializer (grpc-server.ts).
 *
 * ```
 *   RangeResponse  1 header {1 cluster_id, 2 member_id, 3 revision, 4 raft_term}   (varints)
 *                  2 kvs*  {1 key, 2 create_revision, 3 mod_revision, 4 version, 5 value, 6 lease}
 *                  3 more  4 count
 * ```
 * Zero scalars and empty bytes are left out, as Go's encoder does.
 *
 * Limits: the response may not exceed `responseBytesMax` (then MvccError-like
 * `RangeTooLargeError`, ResourceExhausted with grpc-go's text); `RangeBudget` bounds the bytes
 * of all Range responses built and not yet sent.
 */
import { ConureError } from '../../util/index.js';
import type { KeyValue } from '../../mvcc/index.js';
import type { Header } from './codec.js';

const CHUNK_BYTES = 64 * 1024;

/** A Range response over the limit, with grpc-go's text for a message over the send maximum. */
export class RangeTooLargeError extends ConureError {
  constructor(readonly sizeBytes: number, readonly limitBytes: number) {
    super('resource_exhausted', `grpc: trying to send message larger than max (${sizeBytes} vs. ${limitBytes})`);
  }
}

function varintSize(v: bigint | number): number {
  let x = typeof v === 'bigint' ? BigInt.asUintN(64, v) : v;
  if (typeof x === 'number') {
    if (x < 0) return 10;
    let n = 1;
    while (x >= 128) { x = Math.floor(x / 128); n++; }
    return n;
  }
  let n = 1;
  while (x >= 128n) { x >>= 7n; n++; }
  return n;
}

/** An append-only protobuf writer over fixed-size chunks. */
class ChunkWriter {
  private readonly chunks: Buffer[] = [];
  private cur = Buffer.allocUnsafe(CHUNK_BYTES);
  private pos = 0;
  total = 0;

  private room(n: number): void {
    if (this.cur.length - this.pos >= n) return;
    this.chunks.push(this.cur.subarray(0, this.pos));
    this.cur = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, n));
    this.pos = 0;
  }

  byte(b: number): void {
    this.room(1);
    this.cur[this.pos++] = b;
    this.total++;
  }

  varint(v: bigint | number): void {
    if (typeof v === 'number' && v >= 0 && v <= 0xffffffff) {
      this.room(5);
      let x = v;
      while (x >= 128) { this.cur[this.pos++] = (x & 0x7f) | 0x80; x = Math.floor(x / 128); this.total++; }
      this.cur[this.pos++] = x;
      this.total++;
      return;
    }
    let x = BigInt.asUintN(64, BigInt(v));
    this.room(10);
    while (x >= 128n) { this.cur[this.pos++] = Number(x & 0x7fn) | 0x80; x >>= 7n; this.total++; }
    this.cur[this.pos++] = Number(x);
    this.total++;
  }

  bytes(b: Uint8Array): void {
    let off = 0;
    while (off < b.length) {
      if (this.cur.length === this.pos) this.room(1);
      const n = Math.min(b.length - off, this.cur.length - this.pos);
      this.cur.set(b.subarray(off, off + n), this.pos);
      this.pos += n;
      off += n;
    }
    this.total += b.length;
  }

  finish(): Buffer {
    this.chunks.push(this.cur.subarray(0, this.pos));
    return this.chunks.length === 1 ? Buffer.from(this.chunks[0]!) : Buffer.concat(this.chunks, this.total);
  }
}

function kvBodySize(kv: KeyValue): number {
  let n = 0;
  if (kv.key.length) n += 1 + varintSize(kv.key.length) + kv.key.length;
  if (kv.createRevision) n += 1 + varintSize(kv.createRevision);
  if (kv.modRevision) n += 1 + varintSize(kv.modRevision);
  if (kv.version) n += 1 + varintSize(kv.version);
  if (kv.value.length) n += 1 + varintSize(kv.value.length) + kv.value.length;
  if (kv.lease) n += 1 + varintSize(kv.lease);
  return n;
}

/** Encoded size of one `kvs` entry (tag, length, body). */
export function kvEntryBytes(kv: KeyValue): number {
  const body = kvBodySize(kv);
  return 1 + varintSize(body) + body;
}

/**
 * Builds one RangeResponse. Call `kv` for each row in order, then `finish`. Once the response
 * would pass `responseBytesMax`, rows are only counted (to report the size, as grpc-go does) and
 * `finish` throws RangeTooLargeError.
 */
export class RangeResponseBuilder {
  private readonly w = new ChunkWriter();
  private sizeBytes = 0;
  private over = false;

  constructor(private readonly responseBytesMax: number, private readonly onBytes: (n: number) => void = () => {}) {}

  kv(kv: KeyValue): void {
    const entry = kvEntryBytes(kv);
    this.sizeBytes += entry;
    if (this.over || this.sizeBytes > this.responseBytesMax) {
      this.over = true;
      return;
    }
    const before = this.w.total;
    const w = this.w;
    w.byte(0x12); // field 2, length-delimited
    w.varint(kvBodySize(kv));
    if (kv.key.length) { w.byte(0x0a); w.varint(kv.key.length); w.bytes(kv.key); }
    if (kv.createRevision) { w.byte(0x10); w.varint(kv.createRevision); }
    if (kv.modRevision) { w.byte(0x18); w.varint(kv.modRevision); }
    if (kv.version) { w.byte(0x20); w.varint(kv.version); }
    if (kv.value.length) { w.byte(0x2a); w.varint(kv.value.length); w.bytes(kv.value); }
    if (kv.lease) { w.byte(0x30); w.varint(kv.lease); }
    this.onBytes(w.total - before);
  }

  /** The whole message: kvs so far, then header, more and count (field order is free in protobuf). */
  finish(header: Header, more: boolean, count: number): Buffer {
    const h = new ChunkWriter();
    const fields: [number, string][] = [[0x08, header.cluster_id], [0x10, header.member_id], [0x18, header.revision], [0x20, header.raft_term]];
    let hb = 0;
    for (const [, v] of fields) if (v !== '0') hb += 1 + varintSize(BigInt(v));
    const tail = 1 + varintSize(hb) + hb + (more ? 2 : 0) + (count ? 1 + varintSize(count) : 0);
    if (this.over || this.sizeBytes + tail > this.responseBytesMax) throw new RangeTooLargeError(this.sizeBytes + tail, this.responseBytesMax);
    h.byte(0x0a);
    h.varint(hb);
    for (const [tag, v] of fields) if (v !== '0') { h.byte(tag); h.varint(BigInt(v)); }
    if (more) { h.byte(0x18); h.byte(1); }
    if (count) { h.byte(0x20); h.varint(count); }
    this.w.bytes(h.finish());
    this.onBytes(tail);
    return this.w.finish();
  }
}

/**
 * Bytes of Range responses built and not yet sent, across calls, and the gate a Range passes
 * before it reads. `enter` lets one Range build at a time (a build is synchronous, so this costs
 * nothing but a microtask) and only while the total is under `bytesMax`, or nothing at all is in
 * flight, so one Range larger than the budget still runs alone; the others wait in arrival
 * order. `leave` ends the build; `add`/`release` account the response's bytes until it is sent
 * (or the call ends).
 *
 * ```
 *   enter ──► [building] ── add(n)… ──► leave ──► (response queued in grpc-js) ── release(n)
 *     └─ wait in FIFO while building, or inFlight ≥ bytesMax > 0 ─┘
 * ```
 */
export class RangeBudget {
  private inFlight = 0;
  private building = false;
  private readonly waiters: (() => void)[] = [];

  constructor(readonly bytesMax: number) {}

  get bytesInFlight(): number { return this.inFlight; }
  get waiting(): number { return this.waiters.length; }

  private room(): boolean { return this.inFlight < this.bytesMax || this.inFlight === 0; }

  enter(): Promise<void> {
    if (!this.building && this.waiters.length === 0 && this.room()) {
      this.building = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  leave(): void {
    this.building = false;
    this.wake();
  }

  add(n: number): void { this.inFlight += n; }

  release(n: number): void {
    this.inFlight = Math.max(0, this.inFlight - n);
    this.wake();
  }

  private wake(): void {
    if (this.building || this.waiters.length === 0 || !this.room()) return;
    this.building = true;
    this.waiters.shift()!();
  }
}
