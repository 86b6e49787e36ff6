/**
 * Snapshot files: the whole store as of one WAL position, so start-up loads the snapshot and
 * replays only the WAL records after it, and older WAL segments can be deleted.
 *
 * File `<dir>/snapshot-<lsn, 20 digits>.snap`, a sequence of frames framed like WAL records:
 *
 * ```
 *   [bodyLen u32][crc32(body) u32][body: kind u8, fields…]
 *   HEADER  kind=1  magic "FLXSNAP1", lsn f64, createdAtMs f64
 *   KEYS    kind=2  count u32, (key str, scope str)*
 *   COL     kind=3  name str                       — following VALUES/DOC frames belong to it
 *   VALUES  kind=4  count u32, (key str, value str)*
 *   DOC     kind=5  doc str, count u32, ts f64 × count, byteLen u32 × count, UTF-8 data (back to back)
 *                   — a document may span several frames; timestamps ascending across them
 *   END     kind=6  records f64, frames u32        — a file without END is incomplete and rejected
 *   str = byteLength u32 + UTF-8 bytes
 * ```
 *
 * Writing: to `<name>.tmp`, fsync, rename, fsync the directory, so a snapshot file either is
 * complete or does not exist. The writer yields to the event loop after every output chunk, so the
 * server keeps serving while a large snapshot is written (the input is a pinned, consistent
 * `StorePicture`).
 */
import { closeSync, openSync, readSync, readdirSync, fstatSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { CorruptionError } from './errors.js';
import { fsyncDir } from './wal.js';
import type { StorePicture } from './store.js';
import type { Scope } from './protocol.js';
import { canonicalScope } from './protocol.js';

const MAGIC = 'FLXSNAP1';
const enum Kind { Header = 1, Keys = 2, Col = 3, Values = 4, Doc = 5, End = 6 }
const SNAP_RE = /^snapshot-(\d{20})\.snap$/;
/** Target size of one DOC/VALUES frame. */
const FRAME_BYTES_TARGET = 1024 * 1024;
/** Output is written in chunks of this size (the writer yields between chunks). */
const WRITE_CHUNK_BYTES = 8 * 1024 * 1024;
/** Largest frame accepted when reading (a record's data is bounded by the request limit). */
const FRAME_BYTES_MAX = 256 * 1024 * 1024;

export function snapshotName(lsn: number): string { return `snapshot-${String(lsn).padStart(20, '0')}.snap`; }

/** Snapshots in `dir`, newest first. */
export function listSnapshots(dir: string): Array<{ lsn: number; path: string }> {
  return readdirSync(dir)
    .map((f) => SNAP_RE.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ lsn: Number(m[1]), path: join(dir, m[0]) }))
    .sort((a, b) => b.lsn - a.lsn);
}

/** Growable little-endian encoder for one frame body. */
class BodyEncoder {
  buf = Buffer.allocUnsafe(FRAME_BYTES_TARGET * 2);
  pos = 0;
  reset(kind: Kind): void { this.pos = 0; this.u8(kind); }
  private need(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  u8(v: number): void { this.need(1); this.buf[this.pos++] = v; }
  u32(v: number): void { this.need(4); this.buf.writeUInt32LE(v, this.pos); this.pos += 4; }
  f64(v: number): void { this.need(8); this.buf.writeDoubleLE(v, this.pos); this.pos += 8; }
  raw(src: Buffer, start: number, end: number): void {
    this.need(end - start);
    src.copy(this.buf, this.pos, start, end);
    this.pos += end - start;
  }
  str(s: string): void {
    this.need(4 + s.length * 3);
    const n = this.buf.write(s, this.pos + 4, 'utf8');
    this.buf.writeUInt32LE(n, this.pos);
    this.pos += 4 + n;
  }
}

export interface SnapshotWriteResult { path: string; bytes: number; records: number }

/**
 * Writes `picture` as the snapshot for `lsn`. Returns once the file is durable under its final
 * name. The caller releases the picture afterwards. Throws on I/O errors (the temp file is removed).
 */
export async function writeSnapshot(dir: string, lsn: number, picture: StorePicture, nowMs: number): Promise<SnapshotWriteResult> {
  const finalPath = join(dir, snapshotName(lsn));
  const tmpPath = `${finalPath}.tmp`;
  const fh = await open(tmpPath, 'w');
  let out = Buffer.allocUnsafe(WRITE_CHUNK_BYTES);
  let outPos = 0;
  let fileBytes = 0;
  let frames = 0;
  let records = 0;
  const enc = new BodyEncoder();
  const flushOut = async (): Promise<void> => {
    let done = 0;
    while (done < outPos) {
      const n = (await fh.write(out, done, outPos - done, fileBytes + done)).bytesWritten;
      if (n <= 0) throw Object.assign(new Error('snapshot write made no progress (disk full?)'), { code: 'ENOSPC' });
      done += n;
    }
    fileBytes += outPos;
    outPos = 0;
  };
  const emit = async (): Promise<void> => {
    const frameBytes = 8 + enc.pos;
    if (outPos + frameBytes > out.length) {
      await flushOut();
      if (frameBytes > out.length) out = Buffer.allocUnsafe(frameBytes);
    }
    out.writeUInt32LE(enc.pos, outPos);
    out.writeUInt32LE(crc32(enc.buf.subarray(0, enc.pos)), outPos + 4);
    enc.buf.copy(out, outPos + 8, 0, enc.pos);
    outPos += frameBytes;
    frames++;
  };
  try {
    enc.reset(Kind.Header);
    enc.str(MAGIC); enc.f64(lsn); enc.f64(nowMs);
    await emit();
    enc.reset(Kind.Keys);
    enc.u32(picture.apiKeys.length);
    for (const [k, s] of picture.apiKeys) { enc.str(k); enc.str(s); }
    await emit();
    for (const c of picture.collections) {
      enc.reset(Kind.Col);
      enc.str(c.name);
      await emit();
      for (let i = 0; i < c.kv.length;) {
        enc.reset(Kind.Values);
        const countAt = enc.pos;
        enc.u32(0);
        let n = 0;
        for (; i < c.kv.length && enc.pos < FRAME_BYTES_TARGET; i++, n++) { enc.str(c.kv[i]![0]); enc.str(c.kv[i]![1]); }
        enc.buf.writeUInt32LE(n, countAt);
        await emit();
      }
      for (const d of c.docs) {
        const { ts, offs, bytes, len } = d.view;
        for (let i = 0; i < len;) {
          // Take records until the frame reaches its target size (at least one).
          let j = i + 1;
          let size = 12 + (offs[j]! - offs[i]!);
          while (j < len && size + 12 + (offs[j + 1]! - offs[j]!) <= FRAME_BYTES_TARGET) { size += 12 + (offs[j + 1]! - offs[j]!); j++; }
          enc.reset(Kind.Doc);
          enc.str(d.name);
          enc.u32(j - i);
          for (let k = i; k < j; k++) enc.f64(ts[k]!);
          for (let k = i; k < j; k++) enc.u32(offs[k + 1]! - offs[k]!);
          enc.raw(bytes, offs[i]!, offs[j]!);
          records += j - i;
          i = j;
          await emit();
        }
      }
    }
    enc.reset(Kind.End);
    enc.f64(records); enc.u32(frames);
    await emit();
    await flushOut();
    await fh.sync();
    await fh.close();
    await rename(tmpPath, finalPath);
    fsyncDir(dir);
    return { path: finalPath, bytes: fileBytes, records };
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(tmpPath, { force: true });
    throw err;
  }
}

/**
 * Receives a snapshot's contents, in file order. `run` delivers `count` records of one document:
 * record k has timestamp `tsAt(k)` and `lenAt(k)` bytes of UTF-8 data, stored back to back in
 * `src` from `srcStart`. Runs of a document arrive consecutively, timestamps ascending. The
 * accessors and `src` are valid only during the call.
 */
export interface SnapshotSink {
  apiKey(key: string, scope: Scope): void;
  collection(col: string): void;
  value(col: string, key: string, value: string): void;
  run(col: string, doc: string, count: number, tsAt: (k: number) => number, lenAt: (k: number) => number, src: Buffer, srcStart: number): void;
}

/** Reads and verifies a snapshot, streaming it into `sink`. Returns its LSN and record count. */
export function readSnapshot(path: string, sink: SnapshotSink): { lsn: number; records: number } {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    let buf = Buffer.allocUnsafe(WRITE_CHUNK_BYTES);
    let start = 0; // first unread byte of buf
    let end = 0; // end of valid bytes in buf
    let fileOff = 0; // file offset of buf[0]
    let lsn = -1;
    let col: string | undefined;
    let records = 0;
    let frames = 0;
    const fail = (at: number, why: string): never => { throw new CorruptionError(path, fileOff + at, why); };
    for (;;) {
      // Ensure at least one whole frame is buffered.
      if (end - start < 8 || end - start < 8 + buf.readUInt32LE(start)) {
        if (fileOff + end >= size) {
          if (end - start === 0) fail(start, 'missing END frame');
          fail(start, 'truncated frame');
        }
        const want = end - start >= 8 ? 8 + buf.readUInt32LE(start) : 8;
        if (want > FRAME_BYTES_MAX) fail(start, `frame of ${want} bytes exceeds the limit`);
        const carry = end - start;
        const next = carry + WRITE_CHUNK_BYTES > buf.length || want > buf.length ? Buffer.allocUnsafe(Math.max(buf.length, want + WRITE_CHUNK_BYTES)) : buf;
        buf.copy(next, 0, start, end);
        buf = next;
        fileOff += start;
        start = 0;
        end = carry;
        const n = readSync(fd, buf, end, buf.length - end, fileOff + end);
        end += n;
        continue;
      }
      const bodyLen = buf.readUInt32LE(start);
      const body = buf.subarray(start + 8, start + 8 + bodyLen);
      if (crc32(body) !== buf.readUInt32LE(start + 4)) fail(start, 'checksum mismatch');
      const frameAt = start;
      start += 8 + bodyLen;
      frames++;
      let p = 1;
      const u32 = (): number => { const v = body.readUInt32LE(p); p += 4; return v; };
      const f64 = (): number => { const v = body.readDoubleLE(p); p += 8; return v; };
      const str = (): string => { const n = u32(); const s = body.toString('utf8', p, p + n); p += n; return s; };
      const kind = body[0];
      if (lsn < 0 && kind !== Kind.Header) fail(frameAt, 'first frame is not a header');
      switch (kind) {
        case Kind.Header:
          if (str() !== MAGIC) fail(frameAt, 'bad magic');
          lsn = f64();
          break;
        case Kind.Keys: {
          const n = u32();
          for (let i = 0; i < n; i++) {
            const k = str();
            const scope = canonicalScope(str());
            if (scope === undefined) fail(frameAt, 'bad scope');
            sink.apiKey(k, scope!);
          }
          break;
        }
        case Kind.Col:
          col = str();
          sink.collection(col);
          break;
        case Kind.Values: {
          if (col === undefined) fail(frameAt, 'values before any collection');
          const n = u32();
          for (let i = 0; i < n; i++) { const k = str(); sink.value(col!, k, str()); }
          break;
        }
        case Kind.Doc: {
          if (col === undefined) fail(frameAt, 'records before any collection');
          const doc = str();
          const n = u32();
          const tsBase = p;
          const lenBase = p + 8 * n;
          const dataBase = lenBase + 4 * n;
          if (dataBase > body.length) fail(frameAt, 'DOC frame shorter than its record count');
          let total = 0;
          for (let k = 0; k < n; k++) total += body.readUInt32LE(lenBase + 4 * k);
          if (dataBase + total !== body.length) fail(frameAt, 'DOC frame data length mismatch');
          sink.run(col!, doc, n, (k) => body.readDoubleLE(tsBase + 8 * k), (k) => body.readUInt32LE(lenBase + 4 * k), body, dataBase);
          records += n;
          break;
        }
        case Kind.End: {
          const want = f64();
          if (want !== records) fail(frameAt, `END says ${want} records, read ${records}`);
          if (u32() !== frames - 1) fail(frameAt, 'frame count mismatch');
          return { lsn, records };
        }
        default:
          fail(frameAt, `unknown frame kind ${kind}`);
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Removes snapshots older than `keepLsn` and leftover temp files. */
export async function removeOldSnapshots(dir: string, keepLsn: number): Promise<void> {
  for (const f of readdirSync(dir)) {
    const m = SNAP_RE.exec(f);
    if ((m && Number(m[1]) < keepLsn) || f.endsWith('.snap.tmp')) await rm(join(dir, f), { force: true });
  }
}
