/**
 * The raft protocol state machine (internal; the public surface is RawNode).
 *
 * It follows the Raft paper and Ongaro's thesis, with the structure of etcd-io/raft:
 * `step(m)` dispatches on term, then on role; outgoing messages collect in `msgs` and are
 * handed to the driver through RawNode.ready().
 *
 * Membership takes effect when its entry is APPENDED (thesis §4.1), on every member, and is
 * rolled back if the entry is truncated. Single-server changes only; see docs/raft.md.
 */
import { applyConfChange, applyConfChangeLenient, decodeConfChange } from './conf-change.js';
import { CompactedError, InvalidConfChangeError, ProposalDroppedError, RaftConfigError, SnapshotTemporarilyUnavailableError, type DropReason } from './errors.js';
import { RaftLog } from './log.js';
import { Progress } from './progress.js';
import type { Rng } from './rng.js';
import type { Storage } from './storage.js';
import type { Entry, EntryType, HardState, Membership, Message, MessageType, NodeId, ReadState, Role, SoftState } from './types.js';
import { NONE, allMembers, cloneMembership, entryBytes, makeMessage, quorumSize, suffrageOf, votingMembers } from './types.js';

/**
 * Rules broken on purpose, for the simulator's mutation tests only. Never set in production.
 * - `countStaleVotes`: a candidate counts vote grants from an earlier term.
 * - `skipUpToDateCheck`: voters grant votes without the §5.4.1 log comparison.
 * - `commitPriorTermByCounting`: the leader commits entries of earlier terms by counting (Figure 8).
 * - `voteTwice`: a voter grants a second vote in a term it already voted in.
 * - `unsafeLease`: lease reads are served whenever this member leads (no lease check).
 * - `commitWithoutQuorum`: the leader commits what it holds itself, without a quorum (the fault
 *   suite's early-ack mutation: writes are acknowledged before a majority has them).
 */
export type RaftMutation = 'countStaleVotes' | 'skipUpToDateCheck' | 'commitPriorTermByCounting' | 'voteTwice' | 'unsafeLease' | 'commitWithoutQuorum';

/** Read modes: `safe` is ReadIndex with a heartbeat round; `lease` trusts the leader lease. */
export type ReadOnlyOption = 'safe' | 'lease';

export interface RaftConfig {
  /** This member's id; must not be empty. */
  id: NodeId;
  /** Where the durable log is read from; the driver writes it (see Storage). */
  storage: Storage;
  /** Seeded randomness for the election timeout jitter. */
  rng: Rng;
  /** Ticks without hearing from a leader before campaigning (randomized in [T, 2T)). Default 10. */
  electionTimeoutTicks?: number;
  /** Ticks between leader heartbeats; must be < electionTimeoutTicks. Default 1. */
  heartbeatTicks?: number;
  /** The last index the application has applied (on restart). Default: the snapshot index. */
  applied?: number;
  /** Max bytes of entries in one append message (at least one entry is always sent). Default 1 MiB. */
  maxSizePerMsgBytes?: number;
  /** Max append messages in flight to one member in replicate state. Default 256. */
  maxInflightMsgs?: number;
  /** Max bytes of entries in flight to one member; 0 means unlimited. Default 32 MiB. */
  maxInflightBytes?: number;
  /** Max bytes of proposed but uncommitted entries on the leader. Default 64 MiB. */
  maxUncommittedEntriesBytes?: number;
  /** Max bytes of committed entries handed out in one Ready. Default 16 MiB. */
  maxCommittedSizePerReadyBytes?: number;
  /** Max queued ReadIndex requests on the leader. Default 4096. */
  maxPendingReadIndex?: number;
  /** Max bytes of a ReadIndex context. Default 256. */
  maxReadIndexContextBytes?: number;
  /** Pre-vote (thesis §9.6): campaign only when a quorum would grant a vote. Default true. */
  preVote?: boolean;
  /** The leader steps down when it has not heard from a quorum for an election timeout. Default true. */
  checkQuorum?: boolean;
  /**
   * `lease` requires checkQuorum and must be set on every member (followers enforce the
   * lease: they ignore votes while they hear from a leader, and for one election timeout
   * after a restart). Default `safe`.
   */
  readOnlyOption?: ReadOnlyOption;
  /** Lease mode: the lease ends this many ticks early, covering clock drift. Default T/5. */
  leaseMarginTicks?: number;
  /** When true, followers reject proposals instead of forwarding them to the leader. */
  disableProposalForwarding?: boolean;
  /** Entries kept below a snapshot when raft asks the driver to compact. Default 1024. */
  compactionRetainEntries?: number;
  /** Test-only: break one rule on purpose (see RaftMutation). */
  testMutation?: RaftMutation;
}

interface ReadRequest { index: number; context: Uint8Array; key: string; from: NodeId; acks: Set<NodeId> }

function ctxKey(c: Uint8Array): string { return c.join(','); }
const EMPTY = new Uint8Array(0);

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role: Role = 'follower';
  readonly log: RaftLog;
  membership: Membership;
  /** Config history: the base (at or below applied) then every conf entry above it, in index order. */
  configs: Array<{ index: number; membership: Membership }>;
  prs = new Map<NodeId, Progress>();
  votes = new Map<NodeId, boolean>();
  msgs: Message[] = [];
  readStates: ReadState[] = [];
  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  leadTransferee: NodeId = NONE;
  /** The last transferee whose transfer timed out (the arbiter hand-off avoids it). */
  private failedTransferee: NodeId = NONE;
  pendingConfIndex = 0;
  /** Arbiter only: the highest index whose payload may be dropped. */
  trimTo = 0;
  /** Ticks since this instance was created (stamps heartbeats for the leader lease). */
  ticksNow = 0;
  /**
   * Lease mode only: a restarted member may have acknowledged a leader's heartbeat just before
   * it crashed, so it ignores vote requests for one election timeout after a restart.
   */
  private bootLeaseTicks = 0;
  private timeoutNowSent = false;
  /** Set by snapshotCreated: the driver may compact the log up to here. */
  compactTo = 0;

  private uncommitted: Array<[number, number]> = [];
  private uncommittedBytes = 0;
  private readQueue: ReadRequest[] = [];
  private readsAwaitingCommit: Array<{ from: NodeId; context: Uint8Array }> = [];

  readonly electionTimeoutTicks: number;
  readonly heartbeatTicks: number;
  readonly maxSizePerMsgBytes: number;
  readonly maxInflightMsgs: number;
  readonly maxInflightBytes: number;
  readonly maxUncommittedEntriesBytes: number;
  readonly maxCommittedSizePerReadyBytes: number;
  readonly maxPendingReadIndex: number;
  readonly maxReadIndexContextBytes: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly readOnlyOption: ReadOnlyOption;
  readonly disableProposalForwarding: boolean;
  readonly compactionRetainEntries: number;
  readonly leaseMarginTicks: number;
  readonly mutation: RaftMutation | undefined;
  private readonly rng: Rng;

  constructor(c: RaftConfig) {
    if (!c.id) throw new RaftConfigError('id must not be empty');
    this.id = c.id;
    this.rng = c.rng;
    this.electionTimeoutTicks = c.electionTimeoutTicks ?? 10;
    this.heartbeatTicks = c.heartbeatTicks ?? 1;
    this.maxSizePerMsgBytes = c.maxSizePerMsgBytes ?? 1 << 20;
    this.maxInflightMsgs = c.maxInflightMsgs ?? 256;
    this.maxInflightBytes = c.maxInflightBytes ?? 32 << 20;
    this.maxUncommittedEntriesBytes = c.maxUncommittedEntriesBytes ?? 64 << 20;
    this.maxCommittedSizePerReadyBytes = c.maxCommittedSizePerReadyBytes ?? 16 << 20;
    this.maxPendingReadIndex = c.maxPendingReadIndex ?? 4096;
    this.maxReadIndexContextBytes = c.maxReadIndexContextBytes ?? 256;
    this.preVote = c.preVote ?? true;
    this.checkQuorum = c.checkQuorum ?? true;
    this.readOnlyOption = c.readOnlyOption ?? 'safe';
    this.disableProposalForwarding = c.disableProposalForwarding ?? false;
    this.compactionRetainEntries = c.compactionRetainEntries ?? 1024;
    this.leaseMarginTicks = c.leaseMarginTicks ?? Math.max(1, Math.floor(this.electionTimeoutTicks / 5));
    this.mutation = c.testMutation;
    const positive: Array<[string, number]> = [
      ['electionTimeoutTicks', this.electionTimeoutTicks], ['heartbeatTicks', this.heartbeatTicks],
      ['maxSizePerMsgBytes', this.maxSizePerMsgBytes], ['maxInflightMsgs', this.maxInflightMsgs],
      ['maxUncommittedEntriesBytes', this.maxUncommittedEntriesBytes],
      ['maxCommittedSizePerReadyBytes', this.maxCommittedSizePerReadyBytes],
      ['maxPendingReadIndex', this.maxPendingReadIndex], ['maxReadIndexContextBytes', this.maxReadIndexContextBytes],
    ];
    for (const [name, v] of positive) if (!Number.isInteger(v) || v <= 0) throw new RaftConfigError(`${name} must be a positive integer`);
    if (!Number.isInteger(this.maxInflightBytes) || this.maxInflightBytes < 0) throw new RaftConfigError('maxInflightBytes must be ≥ 0');
    if (!Number.isInteger(this.compactionRetainEntries) || this.compactionRetainEntries < 0) throw new RaftConfigError('compactionRetainEntries must be ≥ 0');
    if (this.heartbeatTicks >= this.electionTimeoutTicks) throw new RaftConfigError('heartbeatTicks must be less than electionTimeoutTicks');
    if (this.readOnlyOption === 'lease' && !this.checkQuorum) throw new RaftConfigError('readOnlyOption lease requires checkQuorum');
    if (!Number.isInteger(this.leaseMarginTicks) || this.leaseMarginTicks < 0 || this.leaseMarginTicks >= this.electionTimeoutTicks) throw new RaftConfigError('leaseMarginTicks must be in [0, electionTimeoutTicks)');

    const st = c.storage.initialState();
    this.log = new RaftLog(c.storage, c.applied ?? 0);
    this.term = st.hardState.term;
    this.vote = st.hardState.vote;
    // Rebuild the configuration: the snapshot's, then every conf entry in the log after it.
    const snapIndex = this.log.firstIndex() - 1;
    this.configs = [{ index: snapIndex, membership: cloneMembership(st.membership) }];
    this.membership = cloneMembership(st.membership);
    let lo = this.log.firstIndex();
    const hi = this.log.lastIndex() + 1;
    while (lo < hi) {
      const page = this.log.slice(lo, hi, 4 << 20);
      this.onAppended(lo, page);
      lo += page.length;
    }
    this.trimTo = c.storage.payloadFloor?.() ?? 0;
    this.becomeFollower(this.term, NONE);
    // A member that has seen a term beyond the bootstrap one may hold a lease promise.
    if (this.readOnlyOption === 'lease' && this.term > 1) this.bootLeaseTicks = this.electionTimeoutTicks;
  }

  // ---------------------------------------------------------------- status

  hardState(): HardState { return { term: this.term, vote: this.vote, commit: this.log.committed }; }
  softState(): SoftState { return { lead: this.lead, role: this.role }; }
  isArbiter(): boolean { return this.membership.arbiters.includes(this.id); }
  promotable(): boolean { return this.membership.voters.includes(this.id) || this.membership.arbiters.includes(this.id); }

  /**
   * Whether this member may start an election: it votes in its latest configuration, or
   * (thesis §4.2.2) that configuration is not yet committed and it voted in the one before:
   * a member being removed may still be needed to commit its own removal.
   */
  canCampaign(): boolean {
    if (this.promotable()) return true;
    const n = this.configs.length;
    if (n < 2 || this.configs[n - 1]!.index <= this.log.committed) return false;
    const prev = this.configs[n - 2]!.membership;
    return prev.voters.includes(this.id) || prev.arbiters.includes(this.id);
  }

  /** The membership in force at `index` (applied ≤ index). */
  membershipAt(index: number): Membership {
    let m = this.configs[0]!.membership;
    for (const c of this.configs) if (c.index <= index) m = c.membership;
    return cloneMembership(m);
  }

  // ---------------------------------------------------------------- sending

  private send(m: Message): void { this.msgs.push(m); }

  private voterDurable(): number {
    let min = this.log.committed;
    for (const v of this.membership.voters) {
      const pr = this.prs.get(v);
      const match = v === this.id ? this.log.lastIndex() : (pr ? pr.match : 0);
      if (match < min) min = match;
    }
    return min;
  }

  private voterDurableFor(to: NodeId): number { return this.membership.arbiters.includes(to) ? this.voterDurable() : 0; }

  private payloadFloor(): number { return Math.max(this.log.storage.payloadFloor?.() ?? 0, this.isArbiter() ? this.trimTo : 0); }

  /** Sends an append (or a snapshot) to `to` when its flow control allows; returns whether it sent. */
  sendAppend(to: NodeId, sendIfEmpty = true): boolean {
    const pr = this.prs.get(to);
    if (!pr || to === this.id || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let prevTerm: number;
    let ents: Entry[];
    try {
      prevTerm = this.log.term(prevIndex);
      ents = this.log.slice(pr.next, this.log.lastIndex() + 1, this.maxSizePerMsgBytes);
    } catch (err) {
      if (err instanceof CompactedError) return this.sendSnapshot(to, pr);
      throw err;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    // An arbiter leading a hand-off never ships entries whose payloads it dropped.
    if (ents.length > 0 && ents[0]!.index <= this.payloadFloor()) return false;
    let bytes = 0;
    for (const e of ents) bytes += entryBytes(e);
    this.send(makeMessage({
      type: 'app', from: this.id, to, term: this.term, index: prevIndex, logTerm: prevTerm,
      entries: ents, commit: this.log.committed, voterDurable: this.voterDurableFor(to),
    }));
    pr.sentEntries(ents.length > 0 ? ents[ents.length - 1]!.index : prevIndex, ents.length, bytes);
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive || this.isArbiter()) return false;
    let snap;
    try { snap = this.log.snapshot(); } catch (err) {
      if (err instanceof SnapshotTemporarilyUnavailableError) return false;
      throw err;
    }
    if (snap.meta.index === 0) return false;
    if (this.membership.arbiters.includes(to)) snap = { meta: snap.meta, data: EMPTY };
    pr.becomeSnapshot(snap.meta.index);
    this.send(makeMessage({ type: 'snap', from: this.id, to, term: this.term, snapshot: snap }));
    return true;
  }

  private sendHeartbeat(to: NodeId, context: Uint8Array): void {
    const pr = this.prs.get(to);
    const commit = Math.min(pr ? pr.match : 0, this.log.committed);
    this.send(makeMessage({ type: 'heartbeat', from: this.id, to, term: this.term, commit, context, voterDurable: this.voterDurableFor(to), index: this.ticksNow }));
  }

  bcastAppend(): void { for (const id of this.prs.keys()) if (id !== this.id) this.sendAppend(id); }
  /**
   * Heartbeats carry the context of the newest pending read, so a lost read round is retried
   * by the next heartbeat; its acknowledgement also confirms every earlier pending read.
   */
  private bcastHeartbeat(context?: Uint8Array): void {
    const ctx = context ?? (this.readQueue.length > 0 ? this.readQueue[this.readQueue.length - 1]!.context : EMPTY);
    for (const id of this.prs.keys()) if (id !== this.id) this.sendHeartbeat(id, ctx);
  }

  // ---------------------------------------------------------------- role changes

  private resetRandomizedElectionTimeout(): void {
    const t = this.electionTimeoutTicks;
    // Arbiters wait longer so a voter normally wins; they still campaign to hand off a tail.
    const base = this.isArbiter() ? 2 * t : t;
    this.randomizedElectionTimeout = base + this.rng.nextInt(t);
  }

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = NONE;
    this.votes.clear();
    this.prs.clear();
    this.pendingConfIndex = 0;
    this.uncommitted = [];
    this.uncommittedBytes = 0;
    this.readQueue = [];
    this.readsAwaitingCommit = [];
    this.timeoutNowSent = false;
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.role = 'follower';
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomePreCandidate(): void {
    this.votes.clear();
    this.lead = NONE;
    this.role = 'pre-candidate';
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    const last = this.log.lastIndex();
    for (const id of allMembers(this.membership)) {
      const pr = new Progress(id, last + 1, this.maxInflightMsgs, this.maxInflightBytes);
      if (id === this.id) { pr.match = last; pr.recentActive = true; }
      this.prs.set(id, pr);
    }
    // No configuration change until everything up to here (and the no-op) is committed.
    this.pendingConfIndex = last;
    this.appendEntries([{ type: 'normal', data: EMPTY }], true);
  }

  private syncProgressWithMembership(): void {
    if (this.role !== 'leader') return;
    const members = new Set(allMembers(this.membership));
    for (const id of [...this.prs.keys()]) if (!members.has(id)) this.prs.delete(id);
    for (const id of members) {
      if (!this.prs.has(id)) {
        const pr = new Progress(id, this.log.lastIndex() + 1, this.maxInflightMsgs, this.maxInflightBytes);
        if (id === this.id) pr.match = this.log.lastIndex();
        pr.recentActive = true;
        this.prs.set(id, pr);
      }
    }
    if (this.leadTransferee !== NONE && !this.membership.voters.includes(this.leadTransferee)) this.leadTransferee = NONE;
  }

  /** Records entries written to the log from index `from` on: truncated configs are rolled back. */
  onAppended(from: number, entries: readonly Entry[]): void {
    let changed = false;
    while (this.configs.length > 1 && this.configs[this.configs.length - 1]!.index >= from) {
      this.configs.pop();
      changed = true;
    }
    for (const e of entries) {
      if (e.type !== 'conf' || e.index < from) continue;
      const cur = this.configs[this.configs.length - 1]!.membership;
      this.configs.push({ index: e.index, membership: applyConfChangeLenient(cur, e.data) });
      changed = true;
    }
    if (changed) {
      this.membership = cloneMembership(this.configs[this.configs.length - 1]!.membership);
      this.syncProgressWithMembership();
    }
  }

  /** Drops config history that can no longer be asked for (keeps the last one ≤ applied). */
  pruneConfigs(): void {
    const applied = this.log.applied;
    let keepFrom = 0;
    for (let i = 0; i < this.configs.length; i++) if (this.configs[i]!.index <= applied) keepFrom = i;
    if (keepFrom > 0) this.configs = this.configs.slice(keepFrom);
  }

  // ---------------------------------------------------------------- elections

  tick(): void {
    this.ticksNow++;
    if (this.bootLeaseTicks > 0) this.bootLeaseTicks--;
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.canCampaign() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeoutTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum && !this.quorumActive()) {
        this.becomeFollower(this.term, NONE);
        return;
      }
      if (this.leadTransferee !== NONE) {
        this.failedTransferee = this.leadTransferee;
        this.leadTransferee = NONE;
      }
    }
    if (this.isArbiter() && this.leadTransferee === NONE) {
      // Arbiter hand-off retry (a transfer may have been abandoned): pick a caught-up voter
      // that has answered recently, preferring one that did not just fail to take over.
      const last = this.log.lastIndex();
      const ready = this.membership.voters.filter((v) => { const pr = this.prs.get(v); return pr?.match === last && pr.recentActive; });
      const pick = ready.find((v) => v !== this.failedTransferee) ?? ready[0];
      if (pick !== undefined) this.handleTransferLeader(pick);
    }
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  /** Check-quorum round: did a quorum of the voting set talk to us since the last round? */
  private quorumActive(): boolean {
    const voting = votingMembers(this.membership);
    let active = 0;
    for (const id of voting) {
      if (id === this.id) { active++; continue; }
      const pr = this.prs.get(id);
      if (pr?.recentActive) active++;
    }
    for (const [id, pr] of this.prs) if (id !== this.id) pr.recentActive = false;
    return active >= quorumSize(voting.length);
  }

  hup(transfer: boolean): void {
    if (this.role === 'leader' || !this.canCampaign()) return;
    if (this.preVote && !transfer) this.campaign('pre', false);
    else this.campaign('election', transfer);
  }

  private campaign(kind: 'pre' | 'election', transfer: boolean): void {
    let voteTerm: number;
    if (kind === 'pre') {
      this.becomePreCandidate();
      voteTerm = this.term + 1;
    } else {
      this.becomeCandidate();
      voteTerm = this.term;
    }
    const voting = votingMembers(this.membership);
    if (voting.includes(this.id)) this.votes.set(this.id, true);
    const res = this.poll();
    if (res === 'won') {
      if (kind === 'pre') this.campaign('election', transfer);
      else this.becomeLeader();
      return;
    }
    const type: MessageType = kind === 'pre' ? 'preVote' : 'vote';
    const index = this.log.lastIndex();
    const logTerm = this.log.lastTerm();
    for (const id of voting) {
      if (id === this.id) continue;
      this.send(makeMessage({ type, from: this.id, to: id, term: voteTerm, index, logTerm, force: transfer }));
    }
  }

  private poll(): 'won' | 'lost' | 'pending' {
    const voting = votingMembers(this.membership);
    let granted = 0;
    let rejected = 0;
    for (const id of voting) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    const q = quorumSize(voting.length);
    if (granted >= q) return 'won';
    if (rejected > voting.length - q) return 'lost';
    return 'pending';
  }

  // ---------------------------------------------------------------- step

  step(m: Message): void {
    if (m.term === 0) {
      // Forwarded requests (prop, readIndex, transferLeader) carry no term.
    } else if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        const inLease = this.checkQuorum && ((this.lead !== NONE && this.electionElapsed < this.electionTimeoutTicks) || this.bootLeaseTicks > 0);
        if (inLease && !m.force) return; // leader stickiness: a live leader is not disrupted
      }
      if (m.type === 'preVote') {
        // never change term for a pre-vote
      } else if (m.type === 'preVoteResp' && !m.reject) {
        // the term is bumped when the real campaign starts
      } else if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'heartbeat' || m.type === 'app')) {
        // Tell a stale leader about the newer term so it steps down.
        this.send(makeMessage({ type: 'appResp', from: this.id, to: m.from, term: this.term }));
      } else if (m.type === 'preVote') {
        this.send(makeMessage({ type: 'preVoteResp', from: this.id, to: m.from, term: this.term, reject: true }));
      }
      if (!(this.mutation === 'countStaleVotes' && m.type === 'voteResp' && this.role === 'candidate')) return;
    }

    if (m.type === 'vote' || m.type === 'preVote') {
      const canVote = this.mutation === 'voteTwice' || this.vote === m.from || (this.vote === NONE && this.lead === NONE) || (m.type === 'preVote' && m.term > this.term);
      const upToDate = this.mutation === 'skipUpToDateCheck' || this.log.isUpToDate(m.index, m.logTerm);
      const respType = m.type === 'vote' ? 'voteResp' : 'preVoteResp';
      if (canVote && upToDate) {
        this.send(makeMessage({ type: respType, from: this.id, to: m.from, term: m.term }));
        if (m.type === 'vote') {
          this.electionElapsed = 0;
          this.vote = m.from;
        }
      } else {
        this.send(makeMessage({ type: respType, from: this.id, to: m.from, term: this.term, reject: true }));
      }
      return;
    }
    switch (this.role) {
      case 'leader': this.stepLeader(m); break;
      case 'candidate': case 'pre-candidate': this.stepCandidate(m); break;
      case 'follower': this.stepFollower(m); break;
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'prop': {
        const reason = this.checkProposal(m.entries);
        if (reason === null) {
          try { this.appendProposal(m.entries.map((e) => ({ type: e.type, data: e.data }))); } catch (err) {
            if (!(err instanceof ProposalDroppedError || err instanceof InvalidConfChangeError)) throw err;
          }
        }
        return;
      }
      case 'readIndex': this.handleReadIndex(m.from, m.context); return;
      case 'transferLeader': this.handleTransferLeader(m.from); return;
      case 'appResp': this.handleAppResp(m); return;
      case 'heartbeatResp': this.handleHeartbeatResp(m); return;
      default: return;
    }
  }

  private stepCandidate(m: Message): void {
    const myResp: MessageType = this.role === 'pre-candidate' ? 'preVoteResp' : 'voteResp';
    switch (m.type) {
      case 'app': case 'heartbeat': case 'snap':
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
      default:
        if (m.type !== myResp) return;
        if (!votingMembers(this.membership).includes(m.from)) return;
        if (!this.votes.has(m.from)) this.votes.set(m.from, !m.reject);
        switch (this.poll()) {
          case 'won':
            if (this.role === 'pre-candidate') this.campaign('election', m.force);
            else { this.becomeLeader(); this.bcastAppend(); }
            return;
          case 'lost': this.becomeFollower(this.term, NONE); return;
          case 'pending': return;
        }
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'prop':
        if (this.lead === NONE || this.disableProposalForwarding) return;
        this.send({ ...m, from: this.id, to: this.lead, term: 0 });
        return;
      case 'app': this.electionElapsed = 0; this.lead = m.from; this.handleAppend(m); return;
      case 'heartbeat': this.electionElapsed = 0; this.lead = m.from; this.handleHeartbeat(m); return;
      case 'snap': this.electionElapsed = 0; this.lead = m.from; this.handleSnapshot(m); return;
      case 'transferLeader': case 'readIndex':
        if (this.lead === NONE) return;
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case 'timeoutNow': this.hup(true); return;
      case 'readIndexResp': this.readStates.push({ index: m.index, context: m.context }); return;
      default: return;
    }
  }

  // ---------------------------------------------------------------- follower handlers

  private noteVoterDurable(v: number): void {
    if (!this.isArbiter()) return;
    const t = Math.min(v, this.log.committed);
    if (t > this.trimTo) this.trimTo = t;
  }

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      this.send(makeMessage({ type: 'appResp', from: this.id, to: m.from, term: this.term, index: this.log.committed }));
      return;
    }
    const res = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (res) {
      if (res.appendedFrom !== 0) this.onAppended(res.appendedFrom, m.entries);
      this.noteVoterDurable(m.voterDurable);
      this.send(makeMessage({ type: 'appResp', from: this.id, to: m.from, term: this.term, index: res.lastNew }));
      return;
    }
    // Fast backtracking: hint the largest index ≤ m.index whose term is ≤ m.logTerm.
    const hintIndex = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    const hintTerm = this.log.termOrZero(hintIndex);
    this.send(makeMessage({ type: 'appResp', from: this.id, to: m.from, term: this.term, index: m.index, reject: true, rejectHint: hintIndex, logTerm: hintTerm }));
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.noteVoterDurable(m.voterDurable);
    // `index` echoes the leader's tick stamp: the leader's lease is measured from it.
    this.send(makeMessage({ type: 'heartbeatResp', from: this.id, to: m.from, term: this.term, context: m.context, index: m.index }));
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (!s) return;
    const { index, term } = s.meta;
    if (index <= this.log.committed) {
      this.send(makeMessage({ type: 'appResp', from: this.id, to: m.from, term: this.term, index: this.log.committed }));
      return;
    }
    if (this.log.matchTerm(index, term)) {
      // Our log already has the snapshot's last entry: fast-forward commit only.
      this.log.commitTo(index);
    } else {
      this.log.restore(s);
      this.configs = [{ index, membership: cloneMembership(s.meta.membership) }];
      this.membership = cloneMembership(s.meta.membership);
      this.resetRandomizedElectionTimeout();
    }
    this.send(makeMessage({ type: 'appResp', from: this.id, to: m.from, term: this.term, index: this.log.lastIndex() }));
  }

  // ---------------------------------------------------------------- leader handlers

  private handleAppResp(m: Message): void {
    const pr = this.prs.get(m.from);
    if (!pr) return;
    pr.recentActive = true;
    if (m.reject) {
      let nextProbe = m.rejectHint;
      if (m.logTerm > 0) nextProbe = this.log.findConflictByTerm(m.rejectHint, m.logTerm);
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === 'probe') pr.becomeReplicate();
    else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) { pr.becomeProbe(); pr.becomeReplicate(); }
    else if (pr.state === 'replicate') pr.inflights.freeLE(m.index);

    if (this.maybeCommit()) {
      if (this.role !== 'leader') return; // stepped down after committing its own removal
      this.bcastAppend();
    } else if (wasPaused) {
      this.sendAppend(m.from);
    }
    let guard = this.maxInflightMsgs + 1;
    while (guard-- > 0 && this.sendAppend(m.from, false)) { /* fill the window */ }

    const last = this.log.lastIndex();
    if (m.from === this.leadTransferee && pr.match === last) this.sendTimeoutNow(m.from);
    if (this.isArbiter() && this.leadTransferee === NONE && this.membership.voters.includes(m.from) && pr.match === last) {
      // Arbiter hand-off: the voter has our whole tail; give it the leadership at once.
      this.handleTransferLeader(m.from);
    }
  }

  private handleHeartbeatResp(m: Message): void {
    const pr = this.prs.get(m.from);
    if (!pr) return;
    pr.recentActive = true;
    pr.probeSent = false;
    if (m.index > pr.leaseTick) pr.leaseTick = m.index;
    if (pr.state === 'snapshot') {
      pr.snapshotWaitBeats++;
      // The snapshot was lost (or failed): fall back to probing after an election timeout.
      if (pr.snapshotWaitBeats * this.heartbeatTicks >= this.electionTimeoutTicks) pr.becomeProbe();
    }
    // Appends may have been lost: let one more through so a gap is detected and repaired.
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
    if (m.context.length > 0) this.ackRead(m.from, m.context);
  }

  /** Advances commit by counting, entries of the current term only (§5.4.2). */
  maybeCommit(): boolean {
    const voting = votingMembers(this.membership);
    if (voting.length === 0) return false;
    // The leader's own progress tracks its last index (set on append); absent members count 0.
    const matches = voting.map((id) => this.prs.get(id)?.match ?? 0).sort((a, b) => b - a);
    const mci = matches[this.mutation === 'commitWithoutQuorum' ? 0 : quorumSize(voting.length) - 1]!;
    if (mci <= this.log.committed) return false;
    if (this.log.termOrZero(mci) !== this.term && this.mutation !== 'commitPriorTermByCounting') return false;
    this.log.commitTo(mci);
    this.afterCommit();
    return true;
  }

  private afterCommit(): void {
    const c = this.log.committed;
    let drop = 0;
    while (drop < this.uncommitted.length && this.uncommitted[drop]![0] <= c) {
      this.uncommittedBytes -= this.uncommitted[drop]![1];
      drop++;
    }
    if (drop > 0) this.uncommitted = drop === this.uncommitted.length ? [] : this.uncommitted.slice(drop);
    if (this.log.termOrZero(c) === this.term && this.readsAwaitingCommit.length > 0) {
      const waiting = this.readsAwaitingCommit;
      this.readsAwaitingCommit = [];
      for (const r of waiting) this.handleReadIndex(r.from, r.context);
    }
    // A leader that is no longer a voting member steps down once that change is committed,
    // handing over to an up-to-date voter when one exists.
    const lastConf = this.configs[this.configs.length - 1]!.index;
    if (!this.promotable() && lastConf <= c) {
      const last = this.log.lastIndex();
      for (const v of this.membership.voters) {
        if (this.prs.get(v)?.match === last) { this.sendTimeoutNow(v); break; }
      }
      this.bcastAppend();
      this.becomeFollower(this.term, NONE);
    }
  }

  private sendTimeoutNow(to: NodeId): void {
    // The target's forced election ignores voters' leases: no lease reads for the rest of this term.
    this.timeoutNowSent = true;
    this.send(makeMessage({ type: 'timeoutNow', from: this.id, to, term: this.term }));
  }

  /** Why a proposal of `entries` would be refused right now on this leader, or null. */
  checkProposal(entries: readonly { type: EntryType; data: Uint8Array }[]): DropReason | null {
    if (this.role !== 'leader') return 'not-leader';
    if (this.isArbiter()) return 'arbiter';
    if (this.leadTransferee !== NONE) return 'transferring';
    if (!this.promotable()) return 'not-member';
    if (entries.some((e) => e.type === 'conf')) {
      if (this.pendingConfIndex > this.log.committed || this.log.termOrZero(this.log.committed) !== this.term) return 'conf-pending';
      if (entries.filter((e) => e.type === 'conf').length > 1) return 'conf-pending';
    }
    return null;
  }

  /**
   * Appends proposed entries on the leader. Throws ProposalDroppedError (limits) or
   * InvalidConfChangeError; call checkProposal first.
   */
  appendProposal(entries: readonly { type: EntryType; data: Uint8Array }[]): { index: number; term: number } {
    let m = this.membership;
    for (const e of entries) {
      if (e.type !== 'conf') continue;
      const cc = decodeConfChange(e.data);
      if (cc.type === 'addVoter') this.checkPromotion(m, cc.nodeId);
      m = applyConfChange(m, cc);
    }
    if (!this.appendEntries(entries, false)) throw new ProposalDroppedError('uncommitted-limit', `${this.uncommittedBytes} bytes uncommitted`);
    this.bcastAppend();
    return { index: this.log.lastIndex(), term: this.term };
  }

  /**
   * A new voter must hold every committed entry: arbiters drop payloads that all voters hold,
   * so a voter joining behind that point could never be caught up by an arbiter. Hence, with
   * arbiters in the configuration, voters are only added by promoting a learner, and a
   * learner is promoted only once it holds everything committed.
   */
  private checkPromotion(m: Membership, id: NodeId): void {
    const isLearner = m.learners.includes(id);
    if (!isLearner) {
      if (m.arbiters.length > 0) throw new InvalidConfChangeError(`${id} must join as a learner first (the configuration has arbiters)`);
      return;
    }
    const pr = this.prs.get(id);
    if (!pr || pr.match < this.log.committed) throw new ProposalDroppedError('learner-behind', `${id} has ${pr?.match ?? 0}, commit is ${this.log.committed}`);
  }

  private appendEntries(entries: readonly { type: EntryType; data: Uint8Array }[], force: boolean): boolean {
    const li = this.log.lastIndex();
    const es: Entry[] = entries.map((e, i) => ({ index: li + 1 + i, term: this.term, type: e.type, data: e.data }));
    let bytes = 0;
    for (const e of es) bytes += entryBytes(e);
    if (!force && this.uncommittedBytes > 0 && this.uncommittedBytes + bytes > this.maxUncommittedEntriesBytes) return false;
    this.log.append(es);
    this.uncommitted.push([es[es.length - 1]!.index, bytes]);
    this.uncommittedBytes += bytes;
    for (const e of es) if (e.type === 'conf') this.pendingConfIndex = e.index;
    this.onAppended(es[0]!.index, es);
    this.prs.get(this.id)?.maybeUpdate(this.log.lastIndex());
    this.maybeCommit();
    return true;
  }

  handleTransferLeader(transferee: NodeId): void {
    if (this.role !== 'leader') return;
    if (!this.membership.voters.includes(transferee) || transferee === this.id) return;
    if (this.leadTransferee === transferee) return;
    this.leadTransferee = transferee;
    this.electionElapsed = 0;
    const pr = this.prs.get(transferee);
    if (pr && pr.match === this.log.lastIndex()) this.sendTimeoutNow(transferee);
    else this.sendAppend(transferee);
  }

  // ---------------------------------------------------------------- reads

  /** Number of reads queued on this leader (for the limit). */
  pendingReads(): number { return this.readQueue.length + this.readsAwaitingCommit.length; }

  handleReadIndex(from: NodeId, context: Uint8Array): void {
    if (this.role !== 'leader' || this.isArbiter()) return;
    if (this.pendingReads() >= this.maxPendingReadIndex) return;
    if (this.log.termOrZero(this.log.committed) !== this.term) {
      // §6.4 step 1: the leader must first commit an entry of its own term.
      this.readsAwaitingCommit.push({ from, context });
      return;
    }
    const index = this.log.committed;
    const voting = votingMembers(this.membership);
    if ((this.readOnlyOption === 'lease' && this.leaseValid()) || (voting.length === 1 && voting[0] === this.id)) {
      this.respondRead(from, index, context);
      return;
    }
    const key = ctxKey(context);
    if (this.readQueue.some((r) => r.key === key)) return;
    const acks = new Set<NodeId>();
    if (voting.includes(this.id)) acks.add(this.id);
    this.readQueue.push({ index, context, key, from, acks });
    this.bcastHeartbeat(context);
  }

  /**
   * Lease check for `lease` reads. Each voter that answered a heartbeat stamped with leader
   * tick t ignores vote requests until it has counted electionTimeoutTicks after receiving it,
   * so no other leader can be elected before t + electionTimeoutTicks, where t is the newest
   * stamp acknowledged by a quorum. The lease ends leaseMarginTicks earlier (clock drift).
   * Forced elections (leadership transfer) bypass leases, so none is claimed once a TimeoutNow
   * went out in this term.
   */
  private leaseValid(): boolean {
    if (this.mutation === 'unsafeLease') return true;
    if (this.leadTransferee !== NONE || this.timeoutNowSent) return false;
    const voting = votingMembers(this.membership);
    const stamps = voting.map((id) => (id === this.id ? this.ticksNow : (this.prs.get(id)?.leaseTick ?? -1))).sort((a, b) => b - a);
    const t = stamps[quorumSize(voting.length) - 1]!;
    return t >= 0 && this.ticksNow < t + this.electionTimeoutTicks - this.leaseMarginTicks;
  }

  private ackRead(from: NodeId, context: Uint8Array): void {
    const key = ctxKey(context);
    const at = this.readQueue.findIndex((r) => r.key === key);
    if (at < 0) return;
    const req = this.readQueue[at]!;
    const voting = votingMembers(this.membership);
    if (voting.includes(from)) req.acks.add(from);
    let n = 0;
    for (const id of req.acks) if (voting.includes(id)) n++;
    if (n < quorumSize(voting.length)) return;
    // A quorum confirmed leadership at the time of this request: it and every earlier one are safe.
    const done = this.readQueue.slice(0, at + 1);
    this.readQueue = this.readQueue.slice(at + 1);
    for (const r of done) this.respondRead(r.from, r.index, r.context);
  }

  private respondRead(from: NodeId, index: number, context: Uint8Array): void {
    if (from === this.id || from === NONE) this.readStates.push({ index, context });
    else this.send(makeMessage({ type: 'readIndexResp', from: this.id, to: from, term: this.term, index, context }));
  }

  /** Leader-only: per-member replication progress. */
  progressOf(id: NodeId): Progress | undefined { return this.prs.get(id); }

  suffrage(): ReturnType<typeof suffrageOf> { return suffrageOf(this.membership, this.id); }

  /** The driver reports a snapshot send failed (`ok=false`) or finished (`ok=true`). */
  reportSnapshot(id: NodeId, ok: boolean): void {
    const pr = this.prs.get(id);
    if (!pr || pr.state !== 'snapshot') return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    pr.probeSent = true; // wait for the follower's response or the next heartbeat
  }

}
