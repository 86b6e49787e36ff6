/**
 * The storage the raft core reads its durable log from, and an in-memory implementation.
 *
 * Raft only READS through `Storage`; the driver (node layer) writes: it appends the entries
 * and sets the hard state of every Ready, applies received snapshots, and compacts. The
 * log is addressed as below, `firstIndex - 1` being the index covered by the snapshot:
 *
 * ```
 *        snapshot.meta.index
 *               |   firstIndex                 lastIndex
 *               v   v                          v
 *   ... [ compacted ] [ e ][ e ][ e ] ... [ e ]
 *        term(i) valid for i in [firstIndex-1, lastIndex]
 * ```
 *
 * Errors (the only ones raft tolerates; anything else is treated as fatal and propagates):
 * - `CompactedError`: the index is below `firstIndex` (or `firstIndex - 1` for term()).
 * - `LogUnavailableError`: the index is above `lastIndex`.
 * - `SnapshotTemporarilyUnavailableError`: from `snapshot()` only.
 */
import { CompactedError, LogUnavailableError } from './errors.js';
import type { Entry, HardState, Membership, Snapshot } from './types.js';
import { cloneMembership, emptyMembership, entryBytes } from './types.js';

export interface InitialState {
  hardState: HardState;
  /** The membership recorded in the latest snapshot; raft adds the conf entries after it. */
  membership: Membership;
}

export interface Storage {
  /** The durable hard state and the snapshot's membership. */
  initialState(): InitialState;
  /**
   * Entries in [lo, hi), stopping once `maxBytes` is exceeded but always returning at least
   * one entry when lo < hi. Throws CompactedError when lo < firstIndex, LogUnavailableError
   * when hi > lastIndex + 1.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** The term of entry i, for i in [firstIndex - 1, lastIndex]; errors as for entries(). */
  term(i: number): number;
  /** The first index still held as an entry (snapshot index + 1). */
  firstIndex(): number;
  /** The last index held; equals firstIndex - 1 when the log is empty. */
  lastIndex(): number;
  /** The most recent snapshot; SnapshotTemporarilyUnavailableError when not ready yet. */
  snapshot(): Snapshot;
  /**
   * Arbiter storage only: entries at or below this index have had their payloads dropped
   * (see Ready.arbiterTrimTo). Raft never sends such entries to another member. 0 or absent
   * when payloads were never dropped.
   */
  payloadFloor?(): number;
}

/** The snapshot a brand-new cluster starts from: index 1, term 1, the initial membership. */
export function bootstrapSnapshot(membership: Membership): Snapshot {
  return { meta: { index: 1, term: 1, membership: cloneMembership(membership) }, data: new Uint8Array(0) };
}

/**
 * An in-memory Storage, used by tests, the simulator and the benchmark. Not thread-safe and
 * not durable; `clone()` copies it (the simulator keeps a "disk" copy that way).
 *
 * Invariant: `ents[0]` is a dummy entry at the snapshot's (index, term).
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0, vote: '', commit: 0 };
  private snap: Snapshot = { meta: { index: 0, term: 0, membership: emptyMembership() }, data: new Uint8Array(0) };
  private ents: Entry[] = [{ index: 0, term: 0, type: 'normal', data: new Uint8Array(0) }];
  private floor = 0;

  /** A storage for a member of a brand-new cluster (bootstrap or initial members). */
  static bootstrapped(membership: Membership): MemoryStorage {
    const s = new MemoryStorage();
    s.applySnapshot(bootstrapSnapshot(membership));
    s.setHardState({ term: 1, vote: '', commit: 1 });
    return s;
  }

  initialState(): InitialState {
    return { hardState: { ...this.hardState }, membership: cloneMembership(this.snap.meta.membership) };
  }

  setHardState(hs: HardState): void { this.hardState = { ...hs }; }
  hardStateNow(): HardState { return { ...this.hardState }; }

  private offset(): number { return this.ents[0]!.index; }

  firstIndex(): number { return this.offset() + 1; }
  lastIndex(): number { return this.offset() + this.ents.length - 1; }

  term(i: number): number {
    const off = this.offset();
    if (i < off) throw new CompactedError(i, off + 1);
    if (i - off >= this.ents.length) throw new LogUnavailableError(i, this.lastIndex());
    return this.ents[i - off]!.term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const off = this.offset();
    if (lo <= off) throw new CompactedError(lo, off + 1);
    if (hi > this.lastIndex() + 1) throw new LogUnavailableError(hi - 1, this.lastIndex());
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.ents[i - off]!;
      bytes += entryBytes(e);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  snapshot(): Snapshot { return this.snap; }

  payloadFloor(): number { return this.floor; }

  /** Replaces the whole state with `snap` (a received snapshot). Older snapshots are ignored. */
  applySnapshot(snap: Snapshot): void {
    if (snap.meta.index <= this.snap.meta.index && this.snap.meta.index !== 0) return;
    this.snap = snap;
    this.ents = [{ index: snap.meta.index, term: snap.meta.term, type: 'normal', data: new Uint8Array(0) }];
  }

  /**
   * Records a snapshot the application made at `index` (≤ the applied index). Does not
   * compact; call `compact` for that (raft says when, through Ready.compactTo).
   */
  createSnapshot(index: number, membership: Membership, data: Uint8Array): Snapshot {
    if (index <= this.snap.meta.index) return this.snap;
    const term = this.term(index);
    this.snap = { meta: { index, term, membership: cloneMembership(membership) }, data };
    return this.snap;
  }

  /** Drops entries up to `index` (which must be ≤ the snapshot's index, as etcd requires). */
  compact(index: number): void {
    const off = this.offset();
    if (index <= off) return;
    if (index > this.lastIndex()) throw new LogUnavailableError(index, this.lastIndex());
    const term = this.term(index);
    this.ents = [{ index, term, type: 'normal', data: new Uint8Array(0) }, ...this.ents.slice(index - off + 1)];
  }

  /**
   * Appends entries, first discarding any existing entries at index ≥ entries[0].index.
   * Entries below firstIndex are skipped (already covered by the snapshot).
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    let es = entries;
    if (es[es.length - 1]!.index < first) return;
    if (es[0]!.index < first) es = es.slice(first - es[0]!.index);
    const at = es[0]!.index - this.offset();
    if (at > this.ents.length) throw new LogUnavailableError(es[0]!.index, this.lastIndex());
    if (at < this.ents.length) this.ents.length = at;
    for (const e of es) this.ents.push(e);
  }

  /**
   * Arbiter only: drops the payloads of normal entries at or below `index`, keeping their
   * index, term and type; conf entries are kept whole.
   */
  trimPayloads(index: number): void {
    const off = this.offset();
    const hi = Math.min(index, this.lastIndex());
    for (let i = Math.max(this.floor + 1, off + 1); i <= hi; i++) {
      const e = this.ents[i - off]!;
      if (e.type === 'normal' && e.data.length > 0) this.ents[i - off] = { ...e, data: new Uint8Array(0) };
    }
    if (hi > this.floor) this.floor = hi;
  }

  /** Bytes of entry payloads held (for tests that check an arbiter's disk stays small). */
  payloadBytes(): number {
    let n = 0;
    for (const e of this.ents) if (e.type === 'normal') n += e.data.length;
    return n;
  }

  /** A deep-enough copy: entries are immutable values, so sharing them is safe. */
  clone(): MemoryStorage {
    const c = new MemoryStorage();
    c.hardState = { ...this.hardState };
    c.snap = this.snap;
    c.ents = this.ents.slice();
    c.floor = this.floor;
    return c;
  }
}
