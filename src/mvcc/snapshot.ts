import { createHash } from 'node:crypto';
import { pack, unpack } from 'msgpackr';
import type { KeyValue, StateStore } from '../storage/index.js';
import { InvalidArgumentError } from '../util/index.js';

/**
 * The snapshot file format served by Maintenance.Snapshot (and written by `etcdctl snapshot
 * save`). It is not etcd's bbolt file; it is Conure's own, restorable with `decodeSnapshot`
 * followed by `StateStore.restore`:
 *
 * ```
 *   "CONURE-SNAPSHOT-1\n"   magic (18 bytes)
 *   uint64 BE              length N of the document
 *   N bytes                msgpack { appliedIndex, buckets: [[name, [[key, value], ...]], ...] }
 *   zero padding           to a multiple of 512 bytes (etcdctl checks (size − 32) % 512 == 0)
 *   sha256 of everything above (32 bytes), as etcd appends to its snapshots
 * ```
 *
 * The whole store is copied in one synchronous pass, so the snapshot is consistent (no apply
 * can interleave) and its size is bounded by `snapshotBytesMax`.
 */
const MAGIC = Buffer.from('CONURE-SNAPSHOT-1\n');

export function encodeSnapshot(store: StateStore, snapshotBytesMax = 8 * 1024 ** 3): Buffer {
  const buckets: [string, [Uint8Array, Uint8Array][]][] = [];
  let total = 0;
  for (const name of store.buckets()) {
    const rows: [Uint8Array, Uint8Array][] = [];
    for (const { key, value } of store.range(name)) {
      total += key.length + value.length;
      if (total > snapshotBytesMax) throw new InvalidArgumentError(`snapshot exceeds ${snapshotBytesMax} bytes`);
      rows.push([key, value]);
    }
    buckets.push([name, rows]);
  }
  const doc = pack({ appliedIndex: store.appliedIndex(), buckets });
  const len = Buffer.alloc(8);
  len.writeBigUInt64BE(BigInt(doc.length));
  const unpadded = MAGIC.length + 8 + doc.length;
  const body = Buffer.concat([MAGIC, len, doc, Buffer.alloc((512 - (unpadded % 512)) % 512)]);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

/** Parses and verifies a snapshot. Errors: InvalidArgumentError for a bad magic or checksum. */
export function decodeSnapshot(blob: Uint8Array): { appliedIndex: number; data: Map<string, KeyValue[]> } {
  const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  if (buf.length < MAGIC.length + 32 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new InvalidArgumentError('not a Conure snapshot (bad magic)');
  }
  const body = buf.subarray(0, buf.length - 32);
  if (!createHash('sha256').update(body).digest().equals(buf.subarray(buf.length - 32))) {
    throw new InvalidArgumentError('snapshot checksum mismatch (truncated or corrupt)');
  }
  const n = Number(body.readBigUInt64BE(MAGIC.length));
  if (MAGIC.length + 8 + n > body.length) throw new InvalidArgumentError('snapshot length field exceeds the file');
  const doc = unpack(body.subarray(MAGIC.length + 8, MAGIC.length + 8 + n)) as { appliedIndex: number; buckets: [string, [Uint8Array, Uint8Array][]][] };
  const data = new Map<string, KeyValue[]>();
  for (const [name, rows] of doc.buckets) data.set(name, rows.map(([key, value]) => ({ key, value })));
  return { appliedIndex: doc.appliedIndex, data };
}
