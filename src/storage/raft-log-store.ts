/**
 * The durable raft log on LMDB (`<dir>/raft.mdb`), independent of the raft entry format:
 * each record is (index, term, bytes), where the bytes are the encoded entry.
 *
 * ```
 *   raft.mdb
 *   ├── log    u64be index → u64be term | entry bytes        (contiguous: first..last)
 *   └── meta   "hard"   → hard state bytes
 *              "snap"   → u64be index | u64be term | snapshot metadata bytes
 *              "trim"   → u64be index: payloads at or below it were dropped (arbiters)
 *              "stage"  → a received snapshot's state bytes, kept from the persist that marks
 *                         the snapshot until the state machine has restored it
 * ```
 *
 * Invariants:
 * - Indexes in `log` are contiguous from `firstIndex()` to `lastIndex()`.
 * - After a snapshot at (i, t), `firstIndex() = i + 1` (when no entries are retained) and
 *   `term(i) = t`.
 * - `persist` is atomic: hard state, appended entries (replacing any conflicting suffix) and a
 *   snapshot all become visible together when its promise resolves; they are durable once a
 *   following `sync()` resolves. The commit happens on lmdb's write thread.
 *
 * Ownership: the node's driver loop is the only writer. Errors: `InvalidArgumentError` for a
 * non-contiguous append; `ConureError('internal')` for storage failures; `ClosedError`.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { ClosedError, ConureError, InvalidArgumentError } from '../util/index.js';
import { decodeUint64, encodeUint64 } from './state-store.js';

export interface LogRecord {
  index: number;
  term: number;
  /** The encoded entry; empty after an arbiter trimmed it. */
  data: Uint8Array;
}

export interface SnapshotMark {
  index: number;
  term: number;
  /** Opaque metadata (for example the configuration at `index`). */
  meta: Uint8Array;
}

export interface PersistBatch {
  hardState?: Uint8Array;
  /** Entries to append; any existing entries at or after `entries[0].index` are replaced. */
  entries?: readonly LogRecord[];
  /** A snapshot mark: entries at or below its index are dropped. */
  snapshot?: SnapshotMark;
  /** The application state at `snapshot.index`, staged (see `stagedSnapshot`); only with `snapshot`. */
  snapshotState?: Uint8Array;
}

const FILE = 'raft.mdb';

/** Whether `dir` already holds a raft log (a member that has started before). */
export function raftLogExists(dir: string): boolean {
  return existsSync(join(dir, FILE));
}

const HARD = new TextEncoder().encode('hard');
const SNAP = new TextEncoder().encode('snap');
const TRIM = new TextEncoder().encode('trim');
const STAGE = new TextEncoder().encode('stage');

export class LmdbRaftLog {
  private readonly root: RootDatabase;
  private readonly log: Database<Uint8Array, Uint8Array>;
  private readonly meta: Database<Uint8Array, Uint8Array>;
  private readonly path: string;
  private first: number;
  private last: number;
  private snap: SnapshotMark;
  private closed = false;

  constructor(opts: { dir: string; unsafeNoSync?: boolean; mapSizeBytes?: number }) {
    mkdirSync(opts.dir, { recursive: true });
    this.path = join(opts.dir, FILE);
    try {
      this.root = open({ path: this.path, maxDbs: 4, mapSize: opts.mapSizeBytes ?? 1024 ** 3, overlappingSync: !opts.unsafeNoSync, noSync: opts.unsafeNoSync ?? false, compression: false });
    } catch (err) {
      throw new ConureError('internal', `cannot open raft log at ${this.path}: ${(err as Error).message}`, { cause: err });
    }
    this.log = this.root.openDB<Uint8Array, Uint8Array>('log', { encoding: 'binary', keyEncoding: 'binary' });
    this.meta = this.root.openDB<Uint8Array, Uint8Array>('meta', { encoding: 'binary', keyEncoding: 'binary' });
    const s = this.meta.get(SNAP);
    this.snap = s ? { index: decodeUint64(s.subarray(0, 8)), term: decodeUint64(s.subarray(8, 16)), meta: new Uint8Array(s.subarray(16)) } : { index: 0, term: 0, meta: new Uint8Array(0) };
    const firstKey = first(this.log.getKeys({ limit: 1 }));
    const lastKey = first(this.log.getKeys({ limit: 1, reverse: true }));
    this.first = firstKey ? decodeUint64(firstKey) : this.snap.index + 1;
    this.last = lastKey ? decodeUint64(lastKey) : this.snap.index;
  }

  /** First index still holding an entry (snapshot index + 1 when the log is empty). */
  firstIndex(): number { this.check(); return this.first; }
  /** Last index: the last entry's, or the snapshot's when the log is empty. */
  lastIndex(): number { this.check(); return this.last; }
  snapshot(): SnapshotMark { this.check(); return this.snap; }
  hardState(): Uint8Array | undefined { const v = this.meta.get(HARD); return v ? new Uint8Array(v) : undefined; }
  /** The snapshot state staged by the last `persist` that carried one, until it is dropped. */
  stagedSnapshot(): Uint8Array | undefined {
    this.check();
    const v = this.meta.get(STAGE);
    return v ? new Uint8Array(v) : undefined;
  }

  /** Forgets the staged state (once the state machine has restored it durably). */
  async dropStagedSnapshot(): Promise<void> {
    this.check();
    await this.meta.remove(STAGE);
  }

  /** Index at or below which payloads were trimmed (arbiters); 0 when none. */
  trimmedTo(): number { const v = this.meta.get(TRIM); return v ? decodeUint64(v) : 0; }

  /** Term at `index`: the snapshot's at its index, undefined when compacted or beyond the end. */
  term(index: number): number | undefined {
    this.check();
    if (index === this.snap.index) return this.snap.term;
    if (index < this.first || index > this.last) return undefined;
    const v = this.log.get(encodeUint64(index));
    return v ? decodeUint64(v.subarray(0, 8)) : undefined;
  }

  /** Records in [lo, hi), at least one if any, stopping once `bytesMax` would be exceeded. */
  entries(lo: number, hi: number, bytesMax = Infinity): LogRecord[] {
    this.check();
    if (lo < this.first) throw new ConureError('compacted', `log entries before ${this.first} were compacted (asked from ${lo})`);
    const out: LogRecord[] = [];
    let bytes = 0;
    for (const { key, value } of this.log.getRange({ start: encodeUint64(lo), end: encodeUint64(Math.min(hi, this.last + 1)) })) {
      const rec = { index: decodeUint64(key as Uint8Array), term: decodeUint64(value.subarray(0, 8)), data: new Uint8Array(value.subarray(8)) };
      bytes += rec.data.length;
      if (out.length > 0 && bytes > bytesMax) break;
      out.push(rec);
    }
    return out;
  }

  /**
   * Atomically writes a hard state, entries and a snapshot mark (any subset), and with the mark
   * the snapshot's state (staged). The commit runs
   * on lmdb's write thread, so the event loop stays free; the promise resolves once committed
   * (visible). Call `sync()` after it for durability. One persist at a time (the driver awaits).
   */
  async persist(batch: PersistBatch): Promise<void> {
    this.check();
    const entries = batch.entries ?? [];
    for (let i = 1; i < entries.length; i++) {
      if (entries[i]!.index !== entries[i - 1]!.index + 1) throw new InvalidArgumentError('entries to append are not contiguous');
    }
    let first = this.first, last = this.last, snap = this.snap;
    if (batch.snapshot && batch.snapshot.index > snap.index) {
      snap = batch.snapshot;
      first = snap.index + 1;
    }
    // Validate the append against the log as it will be after the snapshot mark.
    const keepTail = batch.snapshot && batch.snapshot.index > this.snap.index && batch.snapshot.index < this.last && this.term(batch.snapshot.index) === batch.snapshot.term;
    if (batch.snapshot && snap !== this.snap && !keepTail) last = snap.index;
    if (entries.length > 0) {
      const at = entries[0]!.index;
      if (at < first) throw new InvalidArgumentError(`cannot append at ${at}: the log starts at ${first}`);
      if (at > last + 1) throw new InvalidArgumentError(`cannot append at ${at}: the log ends at ${last}`);
    }
    const oldLast = this.last;
    try {
      await this.root.transaction(() => {
        if (snap !== this.snap) {
          const head = new Uint8Array(16 + snap.meta.length);
          head.set(encodeUint64(snap.index), 0); head.set(encodeUint64(snap.term), 8); head.set(snap.meta, 16);
          this.meta.putSync(SNAP, head);
          // Entries covered by the snapshot go; a tail that agrees with it stays.
          const dropTo = keepTail ? snap.index : oldLast;
          for (const k of [...this.log.getKeys({ end: encodeUint64(dropTo + 1) })]) this.log.removeSync(k as Uint8Array);
          if (batch.snapshotState) this.meta.putSync(STAGE, batch.snapshotState);
        }
        if (entries.length > 0) {
          const at = entries[0]!.index;
          for (let i = at; i <= last; i++) this.log.removeSync(encodeUint64(i));
          for (const e of entries) this.log.putSync(encodeUint64(e.index), record(e));
        }
        if (batch.hardState) this.meta.putSync(HARD, batch.hardState);
      });
    } catch (err) {
      if (err instanceof ConureError) throw err;
      const cause = await commitFailure(err);
      throw new ConureError('internal', `raft log write failed: ${cause.message}`, { cause });
    }
    if (entries.length > 0) last = entries[entries.length - 1]!.index;
    this.first = first; this.last = last; this.snap = snap;
  }

  /**
   * Records that the application's own state covers `mark.index` without dropping entries
   * (slow followers may still need them); `compact` drops them later.
   */
  recordSnapshot(mark: SnapshotMark): void {
    this.check();
    if (mark.index <= this.snap.index) return;
    if (mark.index > this.last) throw new InvalidArgumentError(`cannot record a snapshot at ${mark.index}: the log ends at ${this.last}`);
    const head = new Uint8Array(16 + mark.meta.length);
    head.set(encodeUint64(mark.index), 0); head.set(encodeUint64(mark.term), 8); head.set(mark.meta, 16);
    this.meta.putSync(SNAP, head);
    this.snap = mark;
  }

  /** A small named value kept beside the log (e.g. the member address registry). */
  getMeta(name: string): Uint8Array | undefined {
    const v = this.meta.get(new TextEncoder().encode(`x:${name}`));
    return v ? new Uint8Array(v) : undefined;
  }

  putMeta(name: string, value: Uint8Array): void {
    this.check();
    this.meta.putSync(new TextEncoder().encode(`x:${name}`), value);
  }

  /** Drops entries at or below `index` (which must be covered by a snapshot mark). */
  compact(index: number): void {
    this.check();
    if (index > this.snap.index) throw new InvalidArgumentError(`cannot compact to ${index}: the snapshot is at ${this.snap.index}`);
    if (index < this.first) return;
    this.root.transactionSync(() => {
      for (const k of [...this.log.getKeys({ end: encodeUint64(index + 1) })]) this.log.removeSync(k as Uint8Array);
    });
    this.first = index + 1;
  }

  /**
   * Arbiter retention: replaces the payload of entries at or below `index` with an empty one,
   * except those for which `keep(data)` is true (configuration changes). Index and term stay,
   * so log matching still works; the disk stays near empty in steady state.
   */
  trimPayloads(index: number, keep: (data: Uint8Array) => boolean): number {
    this.check();
    const from = Math.max(this.first, this.trimmedTo() + 1);
    const to = Math.min(index, this.last);
    if (to < from) return 0;
    let trimmed = 0;
    this.root.transactionSync(() => {
      const rows = [...this.log.getRange({ start: encodeUint64(from), end: encodeUint64(to + 1) })]
        .map(({ key, value }) => ({ key: Uint8Array.from(key as Uint8Array), value: Uint8Array.from(value) }));
      for (const { key, value } of rows) {
        if (value.length > 8 && !keep(value.subarray(8))) {
          this.log.putSync(key, value.subarray(0, 8));
          trimmed++;
        }
      }
      this.meta.putSync(TRIM, encodeUint64(to));
    });
    return trimmed;
  }

  async sync(): Promise<void> { this.check(); await this.root.flushed; }

  sizeBytes(): number { try { return statSync(this.path).size; } catch { return 0; } }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.root.flushed;
    await this.root.close();
  }

  private check(): void { if (this.closed) throw new ClosedError('raft log'); }
}

function record(e: LogRecord): Uint8Array {
  const out = new Uint8Array(8 + e.data.length);
  out.set(encodeUint64(e.term), 0);
  out.set(e.data, 8);
  return out;
}

function first<T>(it: Iterable<T>): T | undefined {
  for (const x of it) return x;
  return undefined;
}

/**
 * lmdb reports a failed asynchronous commit as "Commit failed (see commitError …)" and rejects
 * `commitError` with the real cause (e.g. ENOSPC) once it knows it: wait briefly for that.
 */
async function commitFailure(err: unknown): Promise<Error> {
  const pending = (err as { commitError?: Promise<unknown> }).commitError;
  if (!pending || typeof pending.then !== 'function') return err as Error;
  const timeout = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 1000).unref());
  const cause = await Promise.race([pending.then(() => undefined, (e: unknown) => e), timeout]);
  return cause instanceof Error ? cause : (err as Error);
}
