/**
 * The raft core's `Storage` over the LMDB raft log (`storage/raft-log-store.ts`).
 *
 * Entry encoding in the log: byte 0 is the entry type (0 normal, 1 conf), the rest its data.
 * The snapshot mark's metadata is the msgpack of the membership at the snapshot's index.
 * Snapshot *data* is not kept here: the state store is the snapshot, and the node streams it
 * beside the raft `snap` message (as etcd sends its db file), so `snapshot().data` is empty. A
 * received snapshot's data is only staged, until the state machine has restored it.
 *
 * Write side (driver only): `persist` for each Ready, `compact`, `trimPayloads` (arbiters).
 */
import { pack, unpack } from 'msgpackr';
import {
  CompactedError, LogUnavailableError, type InitialState, type Storage, emptyMembership, type Entry, type HardState, type Membership, type Snapshot,
} from '../raft/index.js';
import type { LmdbRaftLog, LogRecord } from '../storage/index.js';
import { InvalidArgumentError } from '../util/index.js';

const TYPE_NORMAL = 0;
const TYPE_CONF = 1;

export function encodeEntry(e: Entry): LogRecord {
  const data = new Uint8Array(1 + e.data.length);
  data[0] = e.type === 'conf' ? TYPE_CONF : TYPE_NORMAL;
  data.set(e.data, 1);
  return { index: e.index, term: e.term, data };
}

export function decodeEntry(r: LogRecord): Entry {
  // A trimmed (arbiter) record has no bytes at all: a normal entry whose payload was dropped.
  if (r.data.length === 0) return { index: r.index, term: r.term, type: 'normal', data: new Uint8Array(0) };
  return { index: r.index, term: r.term, type: r.data[0] === TYPE_CONF ? 'conf' : 'normal', data: r.data.subarray(1) };
}

export class LmdbRaftStorage implements Storage {
  constructor(private readonly log: LmdbRaftLog) {}

  initialState(): InitialState {
    const hs = this.log.hardState();
    return {
      hardState: hs ? (unpack(hs) as HardState) : { term: 0, vote: '', commit: 0 },
      membership: this.membershipAtSnapshot(),
    };
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo < this.log.firstIndex()) throw new CompactedError(lo, this.log.firstIndex());
    if (hi > this.log.lastIndex() + 1) throw new LogUnavailableError(hi - 1, this.log.lastIndex());
    // The raft core counts 24 bytes of overhead per entry (raft/types.ts entryBytes).
    return this.log.entries(lo, hi, maxBytes).map(decodeEntry);
  }

  term(i: number): number {
    const first = this.log.firstIndex();
    if (i < first - 1) throw new CompactedError(i, first);
    if (i > this.log.lastIndex()) throw new LogUnavailableError(i, this.log.lastIndex());
    const t = this.log.term(i);
    if (t === undefined) throw new CompactedError(i, first);
    return t;
  }

  firstIndex(): number { return this.log.firstIndex(); }
  lastIndex(): number { return this.log.lastIndex(); }

  snapshot(): Snapshot {
    const s = this.log.snapshot();
    return { meta: { index: s.index, term: s.term, membership: this.membershipAtSnapshot() }, data: new Uint8Array(0) };
  }

  payloadFloor(): number { return this.log.trimmedTo(); }

  /**
   * Persists one Ready's hard state, entries and snapshot metadata atomically (committed on
   * resolve); a snapshot's data, when it has any, is staged with it (LmdbRaftLog.stagedSnapshot).
   */
  persist(hardState: HardState | undefined, entries: readonly Entry[], snapshot: Snapshot | undefined): Promise<void> {
    // Last line of defence: a term or index that is not a safe integer would outlive restarts.
    const bad = (hardState && !(isCount(hardState.term) && isCount(hardState.commit))) || entries.some((e) => !isCount(e.index) || !isCount(e.term))
      || (snapshot && !(isCount(snapshot.meta.index) && isCount(snapshot.meta.term)));
    if (bad) return Promise.reject(new InvalidArgumentError(`refusing to persist a non-integer term or index (hard state ${JSON.stringify(hardState)})`));
    return this.log.persist({
      ...(hardState && { hardState: pack(hardState) }),
      ...(entries.length > 0 && { entries: entries.map(encodeEntry) }),
      ...(snapshot && { snapshot: { index: snapshot.meta.index, term: snapshot.meta.term, meta: pack(snapshot.meta.membership) } }),
      ...(snapshot && snapshot.data.length > 0 && { snapshotState: snapshot.data }),
    });
  }

  /** Records that the application's state covers `index` (membership at it); entries stay. */
  markSnapshot(index: number, term: number, membership: Membership): void {
    this.log.recordSnapshot({ index, term, meta: pack(membership) });
  }

  /** Drops entries up to `index` (raft's Ready.compactTo), never beyond the snapshot mark. */
  compact(index: number): void {
    const to = Math.min(index, this.log.snapshot().index);
    if (to >= this.log.firstIndex()) this.log.compact(to);
  }

  /** Arbiter retention: drop normal-entry payloads at or below `index`; conf entries stay whole. */
  trimPayloads(index: number): number {
    return this.log.trimPayloads(index, (data) => data[0] === TYPE_CONF);
  }

  sync(): Promise<void> { return this.log.sync(); }

  private membershipAtSnapshot(): Membership {
    const s = this.log.snapshot();
    return s.meta.length > 0 ? (unpack(s.meta) as Membership) : emptyMembership();
  }
}

function isCount(n: number): boolean { return Number.isSafeInteger(n) && n >= 0; }
