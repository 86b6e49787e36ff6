/**
 * RawNode: the public, synchronous face of the raft core (after etcd-io/raft's rawnode.go).
 *
 * The driver (the node layer) owns the loop; raft never does I/O:
 *
 * ```
 *   loop:
 *     tick() every tick interval; step(m) for every received message; propose()...
 *     if hasReady():
 *       rd = ready()
 *       1. storage: apply rd.snapshot (if any), append rd.entries, set rd.hardState
 *       2. fsync if rd.mustSync            ── durability before anyone hears about it
 *       3. send rd.messages                ── only after 1-2
 *       4. apply rd.snapshot then rd.committedEntries to the state machine (not on arbiters)
 *       5. serve reads for rd.readStates once applied >= readState.index
 *       6. compact to rd.compactTo; arbiter: drop payloads up to rd.arbiterTrimTo
 *       advance()
 * ```
 * Contract: ready() may not be called again before advance(); tick/step/propose may be
 * called between them. Values in a Ready belong to the caller after advance().
 */
import { encodeConfChange } from './conf-change.js';
import { InvalidConfChangeError, ProposalDroppedError, ProposalTooLargeError, RaftUsageError } from './errors.js';
import { Raft, type RaftConfig } from './raft.js';
import type { ProgressState } from './progress.js';
import type { ConfChange, Entry, HardState, Membership, Message, NodeId, ReadState, Role, Snapshot, SoftState, Suffrage } from './types.js';
import { NONE, entriesBytes, makeMessage } from './types.js';

export interface Ready {
  /** Set when the leader or role changed since the last Ready. */
  softState: SoftState | null;
  /** Set when term, vote or commit changed; persist it (before sending messages). */
  hardState: HardState | null;
  /** Entries to append to storage, replacing any stored entries at index ≥ entries[0].index. */
  entries: Entry[];
  /** A snapshot received from the leader: persist (before entries) and restore the state machine from it. */
  snapshot: Snapshot | null;
  /** Committed entries to apply, in order. Arbiters apply only `conf` entries (to learn addresses). */
  committedEntries: Entry[];
  /** Messages to send, only after entries/hardState/snapshot are durable. */
  messages: Message[];
  /** Completed ReadIndex requests: serve each once applied ≥ index. */
  readStates: ReadState[];
  /** Whether step 2 (fsync) is required: true when entries, a snapshot, or term/vote changed. */
  mustSync: boolean;
  /**
   * When > 0: the driver may delete log entries up to and including this index (a snapshot
   * covers them). On arbiters it never exceeds the arbiter trim point.
   */
  compactTo: number;
  /**
   * Arbiters only, when > 0: every voter has acknowledged every entry up to this index, and it
   * is committed. The driver may drop the payloads of `normal` entries at or below it, keeping
   * their index and term, all `conf` entries and the hard state; Storage.payloadFloor must then
   * report it. Monotonic across Readys and restarts.
   */
  arbiterTrimTo: number;
}

export interface ProgressInfo { match: number; next: number; state: ProgressState; recentActive: boolean }

export interface RaftStatus {
  id: NodeId;
  term: number;
  vote: NodeId;
  lead: NodeId;
  role: Role;
  suffrage: Suffrage | undefined;
  commit: number;
  applied: number;
  lastIndex: number;
  lastTerm: number;
  leadTransferee: NodeId;
  membership: Membership;
  /** Leader only: replication progress of every member. */
  progress: Record<NodeId, ProgressInfo>;
}

function sameHardState(a: HardState, b: HardState): boolean { return a.term === b.term && a.vote === b.vote && a.commit === b.commit; }

export class RawNode {
  private readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  private inFlight: Ready | null = null;
  private reportedTrimTo: number;
  private reportedCompactTo = 0;

  /**
   * Creates a node over `config.storage` (which must already hold the durable state: a fresh
   * member's storage is empty, a bootstrap member's holds bootstrapSnapshot). Throws
   * RaftConfigError for invalid options.
   */
  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.prevSoft = this.raft.softState();
    this.prevHard = this.raft.hardState();
    this.reportedTrimTo = this.raft.trimTo;
  }

  // ------------------------------------------------------------ inputs

  /** Advances the logical clock by one tick (election and heartbeat timers). */
  tick(): void { this.raft.tick(); }

  /** Processes a message from a peer. Messages addressed to another id are ignored. */
  step(m: Message): void {
    if (m.to !== this.raft.id) return;
    this.raft.step(m);
  }

  /** Starts an election now (tests and operators); ignored on leaders and non-voting members. */
  campaign(): void { this.raft.hup(false); }

  /**
   * Proposes `data` for the log. On the leader it is appended at once and the returned
   * { index, term } identify it (it is committed only if that entry is later applied);
   * on a follower it is forwarded to the leader and null is returned.
   * Throws ProposalDroppedError (no leader, transferring, arbiter, limits),
   * ProposalTooLargeError (above maxSizePerMsgBytes).
   */
  propose(data: Uint8Array): { index: number; term: number } | null {
    return this.proposeEntry({ index: 0, term: 0, type: 'normal', data });
  }

  /**
   * Proposes several entries at once (group commit): on the leader they are appended together
   * and share append messages; the result names the last one (the first is
   * index - data.length + 1). On a follower they are forwarded in one message. Throws as
   * propose(); the batch is accepted or refused as a whole. At most maxSizePerMsgBytes in total.
   */
  proposeBatch(data: readonly Uint8Array[]): { index: number; term: number } | null {
    if (data.length === 0) throw new RaftUsageError('proposeBatch needs at least one entry');
    return this.proposeEntries(data.map((d) => ({ index: 0, term: 0, type: 'normal', data: d })));
  }

  /**
   * Proposes one single-server membership change. Only one may be uncommitted at a time and
   * none before the leader has committed an entry of its own term: otherwise
   * ProposalDroppedError('conf-pending'). Invalid changes throw InvalidConfChangeError
   * (on the leader; a forwarded invalid change is dropped by the leader).
   */
  proposeConfChange(cc: ConfChange): { index: number; term: number } | null {
    return this.proposeEntry({ index: 0, term: 0, type: 'conf', data: encodeConfChange(cc) });
  }

  private proposeEntry(e: Entry): { index: number; term: number } | null { return this.proposeEntries([e]); }

  private proposeEntries(es: Entry[]): { index: number; term: number } | null {
    const r = this.raft;
    const bytes = entriesBytes(es);
    if (bytes > r.maxSizePerMsgBytes) throw new ProposalTooLargeError(bytes, r.maxSizePerMsgBytes);
    if (r.isArbiter()) throw new ProposalDroppedError('arbiter');
    if (r.role === 'leader') {
      const reason = r.checkProposal(es);
      if (reason !== null) throw new ProposalDroppedError(reason);
      return r.appendProposal(es);
    }
    if (r.lead === NONE) throw new ProposalDroppedError('no-leader');
    if (r.disableProposalForwarding) throw new ProposalDroppedError('not-leader', `leader is ${r.lead}`);
    r.msgs.push(makeMessage({ type: 'prop', from: r.id, to: r.lead, entries: es }));
    return null;
  }

  /**
   * Requests a linearizable read point (Raft thesis §6.4). `context` (≤ maxReadIndexContextBytes,
   * unique per request) comes back in a ReadState once the leader confirmed its leadership
   * with a quorum. Followers forward to the leader. Requests are dropped silently when
   * leadership changes; callers time out and retry. Throws ProposalDroppedError when no
   * leader is known, on arbiters, or when the leader's queue is full, and ProposalTooLargeError
   * for a context above maxReadIndexContextBytes. In lease mode a leader answers at once while
   * its lease holds (docs/raft.md).
   */
  readIndex(context: Uint8Array): void {
    const r = this.raft;
    if (context.length > r.maxReadIndexContextBytes) throw new ProposalTooLargeError(context.length, r.maxReadIndexContextBytes, 'maxReadIndexContextBytes');
    if (r.isArbiter()) throw new ProposalDroppedError('arbiter');
    if (r.role === 'leader') {
      if (r.pendingReads() >= r.maxPendingReadIndex) throw new ProposalDroppedError('read-queue-full');
      r.handleReadIndex(r.id, context);
      return;
    }
    if (r.lead === NONE) throw new ProposalDroppedError('no-leader');
    r.msgs.push(makeMessage({ type: 'readIndex', from: r.id, to: r.lead, context }));
  }

  /**
   * Asks the leader to hand leadership to `to` (a voter): it catches `to` up, then sends
   * TimeoutNow. Proposals are refused while the transfer is in flight; it is abandoned after
   * an election timeout. Throws InvalidConfChangeError if `to` is not a voter, and
   * ProposalDroppedError('no-leader') when no leader is known.
   */
  transferLeadership(to: NodeId): void {
    const r = this.raft;
    if (!r.membership.voters.includes(to)) throw new InvalidConfChangeError(`${to} is not a voter`);
    if (r.role === 'leader') { r.handleTransferLeader(to); return; }
    if (r.lead === NONE) throw new ProposalDroppedError('no-leader');
    r.msgs.push(makeMessage({ type: 'transferLeader', from: to, to: r.lead }));
  }

  /**
   * The application made a snapshot at `index` (≤ applied) and stored it. Raft will ask the
   * driver to compact up to index - compactionRetainEntries through Ready.compactTo.
   */
  snapshotCreated(index: number): void {
    if (index > this.raft.log.applied) throw new RaftUsageError(`snapshot index ${index} is beyond applied ${this.raft.log.applied}`);
    const to = index - this.raft.compactionRetainEntries;
    if (to > this.raft.compactTo) this.raft.compactTo = to;
  }

  /** The driver failed (ok=false) or finished (ok=true) sending a snapshot to `id`. */
  reportSnapshot(id: NodeId, ok: boolean): void { this.raft.reportSnapshot(id, ok); }

  // ------------------------------------------------------------ Ready / advance

  hasReady(): boolean {
    const r = this.raft;
    if (this.inFlight) return false;
    const ss = r.softState();
    if (ss.lead !== this.prevSoft.lead || ss.role !== this.prevSoft.role) return true;
    if (!sameHardState(r.hardState(), this.prevHard)) return true;
    if (r.log.unstableSnapshot || r.log.unstableEntries.length > 0) return true;
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    if (r.log.hasNextCommittedEntries()) return true;
    if (this.compactTarget() > this.reportedCompactTo) return true;
    return r.isArbiter() && r.trimTo > this.reportedTrimTo;
  }

  /**
   * Where the log may be compacted to. An arbiter never compacts past arbiterTrimTo: until
   * every voter has an entry, the arbiter's full copy may be the only other one.
   */
  private compactTarget(): number {
    const r = this.raft;
    return r.isArbiter() ? Math.min(r.compactTo, r.trimTo) : r.compactTo;
  }

  /** Collects everything the driver must do; see the loop in the file header. */
  ready(): Ready {
    if (this.inFlight) throw new RaftUsageError('ready() called again before advance()');
    const r = this.raft;
    const ss = r.softState();
    const hs = r.hardState();
    const softChanged = ss.lead !== this.prevSoft.lead || ss.role !== this.prevSoft.role;
    const hardChanged = !sameHardState(hs, this.prevHard);
    const entries = r.log.unstableEntries.slice();
    const snapshot = r.log.unstableSnapshot;
    const rd: Ready = {
      softState: softChanged ? ss : null,
      hardState: hardChanged ? hs : null,
      entries,
      snapshot,
      committedEntries: r.log.nextCommittedEntries(r.maxCommittedSizePerReadyBytes),
      messages: r.msgs,
      readStates: r.readStates,
      mustSync: entries.length > 0 || snapshot !== null || hs.term !== this.prevHard.term || hs.vote !== this.prevHard.vote,
      compactTo: this.compactTarget() > this.reportedCompactTo ? this.compactTarget() : 0,
      arbiterTrimTo: r.isArbiter() && r.trimTo > this.reportedTrimTo ? r.trimTo : 0,
    };
    r.msgs = [];
    r.readStates = [];
    this.inFlight = rd;
    return rd;
  }

  /** Acknowledges the last Ready: everything in it was persisted, sent and applied. */
  advance(): void {
    const rd = this.inFlight;
    if (!rd) throw new RaftUsageError('advance() called without a pending ready()');
    const r = this.raft;
    if (rd.softState) this.prevSoft = rd.softState;
    if (rd.hardState) this.prevHard = rd.hardState;
    if (rd.snapshot) {
      r.log.stableSnapTo(rd.snapshot.meta.index);
      if (r.log.applied < rd.snapshot.meta.index) r.log.applied = rd.snapshot.meta.index;
    }
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1]!;
      r.log.stableTo(last.index, last.term);
    }
    if (rd.committedEntries.length > 0) r.log.appliedTo(rd.committedEntries[rd.committedEntries.length - 1]!.index);
    if (rd.compactTo > 0) this.reportedCompactTo = rd.compactTo;
    if (rd.arbiterTrimTo > 0) this.reportedTrimTo = rd.arbiterTrimTo;
    r.pruneConfigs();
    this.inFlight = null;
  }

  // ------------------------------------------------------------ status

  get id(): NodeId { return this.raft.id; }
  get term(): number { return this.raft.term; }
  get leaderId(): NodeId { return this.raft.lead; }
  get role(): Role { return this.raft.role; }
  get commitIndex(): number { return this.raft.log.committed; }
  get applied(): number { return this.raft.log.applied; }
  get lastIndex(): number { return this.raft.log.lastIndex(); }
  get firstIndex(): number { return this.raft.log.firstIndex(); }
  /** This member's suffrage in the current (latest appended) configuration, or undefined. */
  get suffrage(): Suffrage | undefined { return this.raft.suffrage(); }
  /** The current configuration (the latest in the log, committed or not). */
  get membership(): Membership { return this.raft.membershipAt(Number.MAX_SAFE_INTEGER); }
  /** The current configuration as a list of { id, suffrage } (voters, then arbiters, then learners). */
  get members(): Array<{ id: NodeId; suffrage: Suffrage }> {
    const m = this.membership;
    return [
      ...m.voters.map((id) => ({ id, suffrage: 'voter' as const })),
      ...m.arbiters.map((id) => ({ id, suffrage: 'arbiter' as const })),
      ...m.learners.map((id) => ({ id, suffrage: 'learner' as const })),
    ];
  }
  /** The configuration in force at `index` (applied ≤ index); record it in snapshots made at index. */
  membershipAt(index: number): Membership { return this.raft.membershipAt(index); }
  /** The term of entry i, or 0 when compacted or beyond the log. */
  termAt(i: number): number { return this.raft.log.termOrZero(i); }

  status(): RaftStatus {
    const r = this.raft;
    const progress: Record<NodeId, ProgressInfo> = {};
    if (r.role === 'leader') {
      for (const [id, pr] of r.prs) progress[id] = { match: pr.match, next: pr.next, state: pr.state, recentActive: pr.recentActive };
    }
    return {
      id: r.id, term: r.term, vote: r.vote, lead: r.lead, role: r.role, suffrage: r.suffrage(),
      commit: r.log.committed, applied: r.log.applied, lastIndex: r.log.lastIndex(), lastTerm: r.log.lastTerm(),
      leadTransferee: r.leadTransferee, membership: this.membership, progress,
    };
  }
}
