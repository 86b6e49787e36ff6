import type { Revision } from './revision.js';

/** One change of one key: a put, or a tombstone (delete) ending a generation. */
export interface IndexedRevision extends Revision {
  tombstone: boolean;
}

/**
 * The in-memory history of one key: every revision still stored for it, ascending.
 *
 * ```
 *   key "foo":  [ (2,0) (5,0) (7,0)† | (9,1) (12,0) ]
 *                 └── generation 1 ──┘ └─ generation 2 (live) ─┘      † = tombstone
 * ```
 *
 * A generation runs from a create to its tombstone (or to now). The live generation's create
 * revision and version are cached so a put does not read the previous row from disk.
 * Invariants: `revs` is strictly ascending; a tombstone is never followed by another tombstone.
 */
export class KeyIndex {
  readonly revs: IndexedRevision[] = [];
  /** Create revision of the live generation, 0 if the key is deleted. */
  createRevision = 0;
  /** Version within the live generation (1 after the create), 0 if the key is deleted. */
  version = 0;

  /** The latest revision if the key currently exists. */
  live(): IndexedRevision | undefined {
    const last = this.revs[this.revs.length - 1];
    return last && !last.tombstone ? last : undefined;
  }

  /** The latest change at or before `atMain`, if it is a put (the key exists at `atMain`). */
  at(atMain: number): IndexedRevision | undefined {
    let lo = 0;
    let hi = this.revs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.revs[mid]!.main <= atMain) lo = mid + 1;
      else hi = mid;
    }
    const r = lo > 0 ? this.revs[lo - 1] : undefined;
    return r && !r.tombstone ? r : undefined;
  }

  /** The revision just before `rev` (the previous change of this key), if it is a put. */
  before(rev: Revision): IndexedRevision | undefined {
    for (let i = this.revs.length - 1; i >= 0; i--) {
      const r = this.revs[i]!;
      if (r.main < rev.main || (r.main === rev.main && r.sub < rev.sub)) return r.tombstone ? undefined : r;
    }
    return undefined;
  }

  put(rev: Revision, createRevision: number, version: number): void {
    this.revs.push({ main: rev.main, sub: rev.sub, tombstone: false });
    this.createRevision = createRevision;
    this.version = version;
  }

  tombstone(rev: Revision): void {
    this.revs.push({ main: rev.main, sub: rev.sub, tombstone: true });
    this.createRevision = 0;
    this.version = 0;
  }

  /**
   * Drops history made unreachable by a compaction at `atMain`: everything before the latest
   * change at or before `atMain`, and that change too when it is a tombstone. Returns the dropped
   * revisions (their rows must be deleted). The index is empty afterwards iff the key is gone.
   */
  compact(atMain: number): IndexedRevision[] {
    let keepFrom = 0;
    for (let i = 0; i < this.revs.length && this.revs[i]!.main <= atMain; i++) keepFrom = i;
    if (this.revs.length === 0 || this.revs[0]!.main > atMain) return [];
    if (this.revs[keepFrom]!.tombstone) keepFrom++;
    return this.revs.splice(0, keepFrom);
  }
}
