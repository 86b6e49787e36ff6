/**
 * Write-ahead log with group commit.
 *
 * Files: `<dir>/wal-<first LSN, 20 digits>.log`, one active segment at a time. Every record:
 *
 * ```
 *   0        4        8                16     17
 *   +--------+--------+-----------------+------+------------------+
 *   | bodyLen| crc32  | lsn (f64 LE)    | type | payload (UTF-8)  |
 *   +--------+--------+-----------------+------+------------------+
 *            crc32 covers the body: lsn, type and payload (bodyLen bytes)
 * ```
 *
 * LSNs are consecutive integers starting at 1 and never reused. `append` queues a record; the
 * writer loop takes everything queued, writes it with one `write`, calls `fdatasync` once (group
 * commit: many messages, one fsync) and only then invokes the records' `onDurable` callbacks, in
 * LSN order, synchronously one after another. Callers therefore acknowledge only durable data and
 * can apply records to memory in log order inside the callback.
 *
 * Recovery (`Wal.open`): segments are read in order and each record's framing, checksum and LSN
 * sequence are checked. A bad record at the end of the newest segment is a torn write from a crash:
 * the segment is truncated there and start-up continues. A bad record anywhere else is corruption
 * and `open` throws `CorruptionError` (acknowledged data would otherwise be lost silently).
 *
 * Failure: a failed write or fsync poisons the log (the page cache state is unknown afterwards);
 * pending and later appends fail with `WalFailedError` (its message names the cause, e.g.
 * `ENOSPC`), and `onFailure` is called once. A poisoned log does no more I/O: `rotate()` resolves
 * at once and the writer loop stops, so nothing spins and `close()` returns promptly. Restart to
 * recover.
 */
import { closeSync, fsyncSync, openSync, readdirSync, readFileSync, ftruncateSync } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { ClosedError, TooLargeError } from '../util/index.js';
import { CorruptionError, WalFailedError } from './errors.js';

const HEADER_BYTES = 8;
const BODY_FIXED_BYTES = 9;
const SEGMENT_RE = /^wal-(\d{20})\.log$/;

export interface WalOptions {
  dir: string;
  /** Rotate to a new segment once the active one reaches this size (default 64 MiB). */
  segmentBytesMax?: number;
  /** Largest record body accepted on append and on recovery (default 64 MiB). */
  recordBytesMax?: number;
  /** Called after every fsync with its duration in seconds (metrics). */
  onFsync?: (seconds: number, records: number, bytes: number) => void;
  /** Called once, when a write, fsync or rotation fails and poisons the log (for logging). */
  onFailure?: (err: WalFailedError) => void;
}

/** Called once per record, in LSN order; `err` is set when the record could not be made durable. */
export type DurableCallback = (err: Error | null, lsn: number) => void;

/** Replay callback for recovery: one call per intact record, in LSN order. */
export type ReplayFn = (lsn: number, type: number, payload: string) => void;

interface Pending { buf: Buffer; lsn: number; cb: DurableCallback }

interface Segment { firstLsn: number; path: string }

export function segmentName(firstLsn: number): string {
  return `wal-${String(firstLsn).padStart(20, '0')}.log`;
}

/** Encodes one record (exported for tests). */
export function encodeRecord(lsn: number, type: number, payload: string): Buffer {
  const payloadBytes = Buffer.byteLength(payload, 'utf8');
  const buf = Buffer.allocUnsafe(HEADER_BYTES + BODY_FIXED_BYTES + payloadBytes);
  buf.writeUInt32LE(BODY_FIXED_BYTES + payloadBytes, 0);
  buf.writeDoubleLE(lsn, 8);
  buf.writeUInt8(type, 16);
  buf.write(payload, 17, payloadBytes, 'utf8');
  buf.writeUInt32LE(crc32(buf.subarray(HEADER_BYTES)), 4);
  return buf;
}

/** Fsyncs a directory so a created, renamed or deleted entry survives a crash. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}

export class Wal {
  private readonly dir: string;
  private readonly segmentBytesMax: number;
  private readonly recordBytesMax: number;
  private readonly onFsync: WalOptions['onFsync'];
  private readonly onFailure: WalOptions['onFailure'];
  private segments: Segment[];
  private fh: FileHandle;
  private position: number;
  private nextLsn: number;
  private queue: Pending[] = [];
  private queuedBytes = 0;
  private running: Promise<void> | undefined;
  private rotateWaiters: Array<() => void> = [];
  private failed: WalFailedError | undefined;
  private closed = false;

  private constructor(opts: WalOptions, segments: Segment[], fh: FileHandle, position: number, nextLsn: number) {
    this.dir = opts.dir;
    this.segmentBytesMax = opts.segmentBytesMax ?? 64 * 1024 * 1024;
    this.recordBytesMax = opts.recordBytesMax ?? 64 * 1024 * 1024;
    this.onFsync = opts.onFsync;
    this.onFailure = opts.onFailure;
    this.segments = segments;
    this.fh = fh;
    this.position = position;
    this.nextLsn = nextLsn;
  }

  /**
   * Opens the log in `opts.dir` (which must exist), replaying every intact record with
   * `lsn > afterLsn` through `replay`. Throws `CorruptionError` on corruption before the tail.
   */
  static async open(opts: WalOptions, afterLsn: number, replay: ReplayFn): Promise<Wal> {
    const recordBytesMax = opts.recordBytesMax ?? 64 * 1024 * 1024;
    const segments: Segment[] = readdirSync(opts.dir)
      .map((f) => SEGMENT_RE.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ firstLsn: Number(m[1]), path: join(opts.dir, m[0]) }))
      .sort((a, b) => a.firstLsn - b.firstLsn);
    let expected = segments[0]?.firstLsn ?? afterLsn + 1;
    if (expected > afterLsn + 1) {
      throw new CorruptionError(opts.dir, 0, `WAL starts at LSN ${expected} but the snapshot ends at ${afterLsn}; records are missing`);
    }
    let tailLength = 0;
    for (let s = 0; s < segments.length; s++) {
      const seg = segments[s]!;
      const last = s === segments.length - 1;
      if (seg.firstLsn !== expected) throw new CorruptionError(seg.path, 0, `segment starts at LSN ${seg.firstLsn}, expected ${expected}`);
      const buf = readFileSync(seg.path);
      let off = 0;
      let bad: string | undefined;
      while (off < buf.length) {
        if (buf.length - off < HEADER_BYTES + BODY_FIXED_BYTES) { bad = 'short record header'; break; }
        const bodyLen = buf.readUInt32LE(off);
        if (bodyLen < BODY_FIXED_BYTES || bodyLen > recordBytesMax + BODY_FIXED_BYTES) { bad = `bad record length ${bodyLen}`; break; }
        if (off + HEADER_BYTES + bodyLen > buf.length) { bad = 'short record body'; break; }
        const body = buf.subarray(off + HEADER_BYTES, off + HEADER_BYTES + bodyLen);
        if (crc32(body) !== buf.readUInt32LE(off + 4)) { bad = 'checksum mismatch'; break; }
        const lsn = body.readDoubleLE(0);
        if (lsn !== expected) { bad = `LSN ${lsn} out of sequence, expected ${expected}`; break; }
        if (lsn > afterLsn) replay(lsn, body.readUInt8(8), body.toString('utf8', BODY_FIXED_BYTES));
        expected++;
        off += HEADER_BYTES + bodyLen;
      }
      if (bad !== undefined) {
        if (!last) throw new CorruptionError(seg.path, off, bad);
        // Torn tail of the newest segment: cut it off so new records follow intact ones.
        const fd = openSync(seg.path, 'r+');
        try { ftruncateSync(fd, off); fsyncSync(fd); } finally { closeSync(fd); }
      }
      if (last) tailLength = off;
    }
    const nextLsn = Math.max(expected, afterLsn + 1);
    let fh: FileHandle;
    let position: number;
    const tail = segments[segments.length - 1];
    // Keep appending to the newest segment when it continues the sequence and has room.
    if (tail !== undefined && expected === nextLsn && tailLength < (opts.segmentBytesMax ?? 64 * 1024 * 1024)) {
      fh = await open(tail.path, 'r+');
      position = tailLength;
    } else {
      const seg = { firstLsn: nextLsn, path: join(opts.dir, segmentName(nextLsn)) };
      fh = await open(seg.path, 'w');
      fsyncDir(opts.dir);
      segments.push(seg);
      position = 0;
    }
    return new Wal(opts, segments, fh, position, nextLsn);
  }

  /** LSN the next append will get. */
  get nextSequence(): number { return this.nextLsn; }

  /** The error that poisoned the log, if any (writes are refused from then on). */
  get failure(): Error | undefined { return this.failed; }

  /** Bytes queued but not yet written. */
  get pendingBytes(): number { return this.queuedBytes; }

  /**
   * Queues a record. `onDurable(null, lsn)` runs after it is written and fsynced; on failure it
   * runs with the error. Callbacks always run asynchronously and in LSN order. Throws
   * `ClosedError` after `close()` and `TooLargeError` for a payload over `recordBytesMax`.
   */
  append(type: number, payload: string, onDurable: DurableCallback): number {
    if (this.closed) throw new ClosedError('write-ahead log');
    if (payload.length > this.recordBytesMax || Buffer.byteLength(payload, 'utf8') > this.recordBytesMax) {
      throw new TooLargeError(`record of ${Buffer.byteLength(payload, 'utf8')} bytes exceeds the WAL limit of ${this.recordBytesMax} bytes`);
    }
    const lsn = this.nextLsn++;
    const buf = encodeRecord(lsn, type, payload);
    this.queue.push({ buf, lsn, cb: onDurable });
    this.queuedBytes += buf.length;
    this.kick();
    return lsn;
  }

  /**
   * Starts a new segment once everything queued so far is durable (no-op if the active one is
   * empty, or if the log is poisoned: check `failure` afterwards).
   */
  rotate(): Promise<void> {
    if (this.failed !== undefined || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.rotateWaiters.push(resolve);
      this.kick();
    });
  }

  /** Deletes segments whose records all have `lsn <= lsn` (never the active segment). */
  async purgeThrough(lsn: number): Promise<number> {
    let removed = 0;
    while (this.segments.length > 1 && this.segments[1]!.firstLsn - 1 <= lsn) {
      const seg = this.segments.shift()!;
      await rm(seg.path, { force: true });
      removed++;
    }
    if (removed > 0) fsyncDir(this.dir);
    return removed;
  }

  /** Waits for everything queued to be durable, then closes the file. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.running !== undefined) await this.running;
    try {
      await this.fh.close();
    } catch (err) {
      if (this.failed === undefined) throw err; // a poisoned log may have lost its file already
    }
  }

  private kick(): void {
    if (this.running !== undefined) return;
    this.running = this.loop().finally(() => {
      this.running = undefined;
      if (this.queue.length > 0) this.kick();
      else if (this.rotateWaiters.length > 0) {
        if (this.failed === undefined) this.kick(); else this.releaseRotateWaiters();
      }
    });
  }

  private async loop(): Promise<void> {
    // Let every message already read from the sockets queue up first: one fsync for all of them.
    await new Promise<void>((r) => setImmediate(r));
    for (;;) {
      if (this.rotateWaiters.length > 0) {
        if (this.failed === undefined) await this.doRotate();
        else this.releaseRotateWaiters(); // a poisoned log never rotates; waiting would spin forever
      }
      if (this.queue.length === 0) return;
      const batch = this.queue;
      this.queue = [];
      const bytes = this.queuedBytes;
      this.queuedBytes = 0;
      let err: Error | null = this.failed ?? null;
      if (err === null) {
        try {
          const data = batch.length === 1 ? batch[0]!.buf : Buffer.concat(batch.map((p) => p.buf), bytes);
          let written = 0;
          while (written < data.length) {
            const r = await this.fh.write(data, written, data.length - written, this.position + written);
            if (r.bytesWritten <= 0) throw Object.assign(new Error('write made no progress (disk full?)'), { code: 'ENOSPC' });
            written += r.bytesWritten;
          }
          const t0 = process.hrtime.bigint();
          await this.fh.datasync();
          this.onFsync?.(Number(process.hrtime.bigint() - t0) / 1e9, batch.length, bytes);
          this.position += data.length;
        } catch (e) {
          err = this.poison(e);
        }
      }
      for (const p of batch) p.cb(err, p.lsn);
      if (err === null && this.position >= this.segmentBytesMax && !this.closed) await this.doRotate();
    }
  }

  private async doRotate(): Promise<void> {
    const waiters = this.rotateWaiters;
    this.rotateWaiters = [];
    if (this.position > 0) {
      try {
        // Records still queued belong to the new segment: its first LSN is the oldest queued one.
        const firstLsn = this.queue.length > 0 ? this.queue[0]!.lsn : this.nextLsn;
        const seg = { firstLsn, path: join(this.dir, segmentName(firstLsn)) };
        const fh = await open(seg.path, 'w');
        fsyncDir(this.dir);
        await this.fh.close();
        this.fh = fh;
        this.position = 0;
        this.segments.push(seg);
      } catch (e) {
        this.poison(e);
      }
    }
    for (const w of waiters) w();
  }

  private releaseRotateWaiters(): void {
    const waiters = this.rotateWaiters;
    this.rotateWaiters = [];
    for (const w of waiters) w();
  }

  /** Records the first failure (and reports it once); later failures keep the first cause. */
  private poison(cause: unknown): WalFailedError {
    if (this.failed === undefined) {
      const err = new WalFailedError(cause);
      this.failed = err;
      try { this.onFailure?.(err); } catch { /* reporting must not break the writer */ }
      return err;
    }
    return this.failed;
  }
}
