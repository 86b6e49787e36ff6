/**
 * The leader's view of each member's log, with flow control.
 *
 * ```
 *   probe      ──(append accepted)──►  replicate  ──(reject / unreachable)──► probe
 *     │  one message per heartbeat        many in flight, bounded by Inflights
 *     └──(entries compacted)──► snapshot ──(snapshot applied or timed out)──► probe
 * ```
 * Invariant: match < next; in replicate state, next - 1 is the last index sent.
 */
import type { NodeId } from './types.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** A bounded window of in-flight append messages: count and bytes. */
export class Inflights {
  private lastIndexes: number[] = [];
  private sizes: number[] = [];
  private head = 0;
  private bytes = 0;
  constructor(private readonly countMax: number, private readonly bytesMax: number) {}

  get count(): number { return this.lastIndexes.length - this.head; }
  get inflightBytes(): number { return this.bytes; }

  full(): boolean {
    return this.count >= this.countMax || (this.bytesMax > 0 && this.bytes >= this.bytesMax);
  }

  add(lastIndex: number, bytes: number): void {
    this.lastIndexes.push(lastIndex);
    this.sizes.push(bytes);
    this.bytes += bytes;
  }

  /** Frees every in-flight message whose last index is ≤ `index`. */
  freeLE(index: number): void {
    while (this.head < this.lastIndexes.length && this.lastIndexes[this.head]! <= index) {
      this.bytes -= this.sizes[this.head]!;
      this.head++;
    }
    if (this.head > 64 && this.head * 2 > this.lastIndexes.length) {
      this.lastIndexes = this.lastIndexes.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
  }

  /** Frees the oldest in-flight message (a heartbeat response shows the member is alive). */
  freeFirstOne(): void {
    if (this.count > 0) this.freeLE(this.lastIndexes[this.head]!);
  }

  reset(): void {
    this.lastIndexes = [];
    this.sizes = [];
    this.head = 0;
    this.bytes = 0;
  }
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** In probe state: a probe is outstanding; no more appends until a response or heartbeat. */
  probeSent = false;
  /** In snapshot state: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Heartbeat responses seen while in snapshot state (the snapshot is given up after a bound). */
  snapshotWaitBeats = 0;
  /** Lease mode: the newest leader tick stamp this member acknowledged in a heartbeat (-1: none). */
  leaseTick = -1;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  readonly inflights: Inflights;

  constructor(readonly id: NodeId, next: number, inflightCountMax: number, inflightBytesMax: number) {
    this.next = next;
    this.inflights = new Inflights(inflightCountMax, inflightBytesMax);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotWaitBeats = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(index: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = index;
  }

  /** An append up to `lastIndex` (of `bytes`) was sent. */
  sentEntries(lastIndex: number, count: number, bytes: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex, bytes);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  /** An acknowledgement up to `n`; returns whether match advanced. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * A rejection of an append at `rejected`, with the follower's hint `matchHint`; returns
   * whether the rejection was fresh (not a stale duplicate) and next was lowered.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Whether appends are paused (probe outstanding, window full, or snapshot in flight). */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe': return this.probeSent;
      case 'replicate': return this.inflights.full();
      case 'snapshot': return true;
    }
  }
}
