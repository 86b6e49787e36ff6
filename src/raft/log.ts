/**
 * The raft log as the core sees it: the durable part (Storage) followed by an unstable tail
 * that has been appended in memory but not yet persisted by the driver.
 *
 * ```
 *   storage:  [snapshot] [ e  e  e  e ]
 *   unstable:                   [ e  e  e ]        (offset = index of the first unstable entry)
 *                                 ^ may overlap and replace storage's tail once persisted
 *   applied <= committed <= lastIndex
 * ```
 */
import { CompactedError, LogUnavailableError, RaftUsageError } from './errors.js';
import type { Storage } from './storage.js';
import type { Entry, Snapshot } from './types.js';
import { entryBytes } from './types.js';

export class RaftLog {
  readonly storage: Storage;
  /** Unstable snapshot (received, not yet persisted). */
  unstableSnapshot: Snapshot | null = null;
  /** Unstable entries; unstableEntries[0].index === offset. */
  unstableEntries: Entry[] = [];
  offset: number;
  committed: number;
  applied: number;

  constructor(storage: Storage, applied: number) {
    this.storage = storage;
    this.offset = storage.lastIndex() + 1;
    this.committed = storage.initialState().hardState.commit;
    const first = storage.firstIndex();
    // Everything up to the snapshot is applied by construction (the state machine restored it).
    this.applied = Math.max(applied, first - 1);
    if (this.committed < first - 1) this.committed = first - 1;
    if (this.applied > this.committed) throw new RaftUsageError(`applied ${applied} is beyond commit ${this.committed}`);
    if (this.committed > storage.lastIndex()) throw new RaftUsageError(`storage is inconsistent: commit ${this.committed} is beyond last index ${storage.lastIndex()}`);
  }

  firstIndex(): number {
    if (this.unstableSnapshot) return this.unstableSnapshot.meta.index + 1;
    return this.storage.firstIndex();
  }

  lastIndex(): number {
    if (this.unstableEntries.length > 0) return this.offset + this.unstableEntries.length - 1;
    if (this.unstableSnapshot) return this.unstableSnapshot.meta.index;
    return this.storage.lastIndex();
  }

  /** The term of entry i; throws CompactedError / LogUnavailableError outside [first-1, last]. */
  term(i: number): number {
    if (this.unstableEntries.length > 0 && i >= this.offset) {
      const e = this.unstableEntries[i - this.offset];
      if (e) return e.term;
      throw new LogUnavailableError(i, this.lastIndex());
    }
    if (this.unstableSnapshot) {
      if (i === this.unstableSnapshot.meta.index) return this.unstableSnapshot.meta.term;
      if (i < this.unstableSnapshot.meta.index) throw new CompactedError(i, this.unstableSnapshot.meta.index + 1);
      throw new LogUnavailableError(i, this.lastIndex());
    }
    return this.storage.term(i);
  }

  /** The term of entry i, or 0 when it is compacted or beyond the log. */
  termOrZero(i: number): number {
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return 0;
    try { return this.term(i); } catch (err) {
      if (err instanceof CompactedError || err instanceof LogUnavailableError) return 0;
      throw err;
    }
  }

  lastTerm(): number { return this.term(this.lastIndex()); }

  matchTerm(i: number, t: number): boolean {
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return false;
    return this.termOrZero(i) === t;
  }

  /** Raft §5.4.1: is (lastIndex, term) at least as up to date as this log? */
  isUpToDate(lastIndex: number, term: number): boolean {
    const lt = this.lastTerm();
    return term > lt || (term === lt && lastIndex >= this.lastIndex());
  }

  /**
   * Entries in [lo, hi) up to maxBytes (at least one entry). Throws CompactedError when lo is
   * compacted.
   */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo >= hi) return [];
    const first = this.firstIndex();
    if (lo < first) throw new CompactedError(lo, first);
    if (hi > this.lastIndex() + 1) throw new LogUnavailableError(hi - 1, this.lastIndex());
    let out: Entry[] = [];
    if (lo < this.offset) {
      const sHi = Math.min(hi, this.offset);
      out = this.storage.entries(lo, sHi, maxBytes);
      if (out.length < sHi - lo) return out;
    }
    if (hi > this.offset) {
      let bytes = 0;
      for (const e of out) bytes += entryBytes(e);
      for (let i = Math.max(lo, this.offset); i < hi; i++) {
        const e = this.unstableEntries[i - this.offset]!;
        bytes += entryBytes(e);
        if (out.length > 0 && bytes > maxBytes) break;
        out.push(e);
      }
    }
    return out;
  }

  /** Appends entries (already indexed), truncating any conflicting tail. Returns the new last index. */
  append(entries: readonly Entry[]): number {
    if (entries.length === 0) return this.lastIndex();
    const after = entries[0]!.index - 1;
    if (after < this.committed) throw new RaftUsageError(`append after ${after} would truncate committed ${this.committed}`);
    if (after === this.offset + this.unstableEntries.length - 1) {
      for (const e of entries) this.unstableEntries.push(e);
    } else if (after < this.offset) {
      // Replaces part of the durable log: the driver's Storage.append truncates it.
      this.offset = after + 1;
      this.unstableEntries = entries.slice();
    } else {
      this.unstableEntries = this.unstableEntries.slice(0, after + 1 - this.offset).concat(entries);
    }
    return this.lastIndex();
  }

  /**
   * The index of the first entry in `entries` whose term conflicts with the log, or of the
   * first new entry when there is no conflict, or 0 when every entry is already present.
   */
  findConflict(entries: readonly Entry[]): number {
    for (const e of entries) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The follower side of AppendEntries. When (prevIndex, prevTerm) matches, appends the new
   * part of `entries`, advances commit to min(commit, last new index) and returns
   * { lastNew, appendedFrom } (appendedFrom is 0 when nothing was written); otherwise null.
   */
  maybeAppend(prevIndex: number, prevTerm: number, commit: number, entries: readonly Entry[]): { lastNew: number; appendedFrom: number } | null {
    if (!this.matchTerm(prevIndex, prevTerm)) return null;
    const lastNew = prevIndex + entries.length;
    const ci = this.findConflict(entries);
    let appendedFrom = 0;
    if (ci !== 0) {
      if (ci <= this.committed) throw new RaftUsageError(`entry ${ci} conflicts with committed entry (commit ${this.committed})`);
      this.append(entries.slice(ci - prevIndex - 1));
      appendedFrom = ci;
    }
    this.commitTo(Math.min(commit, lastNew));
    return { lastNew, appendedFrom };
  }

  /**
   * Fast backtracking (etcd findConflictByTerm): the largest index ≤ index whose term is
   * ≤ term. Entries above it cannot match a log whose entry at `index` has `term`.
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    const floor = this.firstIndex() - 1;
    while (i > floor) {
      const t = this.termOrZero(i);
      if (t <= term) return i;
      i--;
    }
    return i;
  }

  commitTo(c: number): void {
    if (c > this.committed) {
      if (c > this.lastIndex()) throw new RaftUsageError(`commit ${c} is out of range (last ${this.lastIndex()})`);
      this.committed = c;
    }
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    if (i > this.committed || i < this.applied) throw new RaftUsageError(`applied ${i} out of range [${this.applied}, ${this.committed}]`);
    this.applied = i;
  }

  hasNextCommittedEntries(): boolean {
    return this.committed > this.applied && this.applied + 1 >= this.firstIndex();
  }

  nextCommittedEntries(maxBytes: number): Entry[] {
    if (!this.hasNextCommittedEntries()) return [];
    return this.slice(this.applied + 1, this.committed + 1, maxBytes);
  }

  /** The driver persisted entries up to (i, t): drop them from the unstable tail. */
  stableTo(i: number, t: number): void {
    if (i < this.offset || this.unstableEntries.length === 0) return;
    const e = this.unstableEntries[i - this.offset];
    if (!e || e.term !== t) return;
    this.unstableEntries = this.unstableEntries.slice(i + 1 - this.offset);
    this.offset = i + 1;
  }

  stableSnapTo(i: number): void {
    if (this.unstableSnapshot && this.unstableSnapshot.meta.index === i) this.unstableSnapshot = null;
  }

  /** Installs a received snapshot: the log becomes empty after it. */
  restore(s: Snapshot): void {
    this.committed = s.meta.index;
    this.unstableSnapshot = s;
    this.unstableEntries = [];
    this.offset = s.meta.index + 1;
  }

  /** The latest snapshot (unstable first, else storage's). */
  snapshot(): Snapshot {
    return this.unstableSnapshot ?? this.storage.snapshot();
  }
}
