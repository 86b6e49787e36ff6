/**
 * RaftReplicator: one running raft member: the driver loop around the pure raft core.
 *
 * ```
 *   timers ──tick()──┐          peers ──step(m)──┐        clients ──propose/readIndex──┐
 *                    ▼                           ▼                                     ▼
 *               ┌───────────────────── RawNode (src/raft, no I/O) ─────────────────────┐
 *               └──────────────────────────── ready() ─────────────────────────────────┘
 *                                               │
 *   1. persist snapshot mark (its state staged), entries, hard state in ONE LMDB transaction;
 *      fsync if mustSync
 *   2. restore a received snapshot into the state machine (only now that it is durable)
 *   3. send messages (only now: nothing leaves before it is durable here)
 *   4. apply committed entries in ONE state-store transaction
 *   5. answer proposals (by id) and read barriers (once applied ≥ read index)
 *   6. compact (rd.compactTo) / drop arbiter payloads (rd.arbiterTrimTo); advance()
 * ```
 *
 * Snapshots, as etcd merges its db into the snapshot message: the follower fetches the leader's
 * state (at the leader's applied index, usually past the snapshot raft announced) and hands raft
 * a snapshot at the *state's* index, term and membership. Raft then commits up to that index,
 * so the HardState persisted with the snapshot mark covers everything the restored state holds
 * (a state machine ahead of the persisted commit could not start again). The state is staged
 * in the raft log with the mark and restored after the fsync; a member that stops in between
 * restores it from there when it starts.
 *
 * Leader writes are NOT sent in parallel with the leader's own fsync. The core counts the
 * leader's own copy toward commit as soon as it is appended; if messages (which carry the
 * commit index) left before the leader's fsync, a follower could apply an entry that only one
 * disk holds. Persisting first costs one fsync (~0.3 ms here) on the leader's path and keeps
 * "committed ⇒ durable on a quorum" unconditional. See docs/decisions/001-no-parallel-leader-write.md.
 *
 * Entry data of normal entries: msgpack `[origin member id, incarnation, proposal seq, command]`.
 * The proposer resolves its promise when the entry is applied locally, so a proposal made on a
 * follower (forwarded to the leader by the core) is answered on the follower: one answer. The
 * incarnation (random per process start) keeps an entry proposed before a restart from
 * answering a new proposal that reused its seq; ReadIndex contexts carry it for the same reason.
 *
 * Member addresses travel in conf-change contexts and are kept in a registry persisted beside
 * the raft log (and shipped inside snapshots).
 */
import { pack, unpack } from 'msgpackr';
import { randomInt } from 'node:crypto';
import {
  allMembers, bootstrapSnapshot, createRng, decodeConfChange, ProposalDroppedError, RawNode, suffrageOf,
  type ConfChange, type Entry, type Membership, type Message, type Ready, type Snapshot,
} from '../raft/index.js';
import { LmdbRaftLog } from '../storage/index.js';
import { ClosedError, ConureError, InvalidArgumentError, NotLeaderError, UnavailableError, type Logger } from '../util/index.js';
import { LmdbRaftStorage } from './lmdb-raft-storage.js';
import type { PeerSecret } from './peer-auth.js';
import { MemberHttp } from './member-http.js';
import { PeerTransport, type PeerAdvertise, type PeerTransportOptions } from './peer-transport.js';
import { isMemberId, validatePeerMessage } from './peer-validation.js';
import { CLUSTER_ID, forcedMarker, forceNewCluster, newClusterId, readClusterId, REGISTRY_KEY, writeClusterId } from './recovery.js';
import type { Member, MemberObserver, NodeStatus, RaftStats, Replicator, SnapshottableStateMachine, Suffrage } from '../seams/index.js';

export interface RaftReplicatorOptions {
  id: string;
  role: 'voter' | 'arbiter';
  dataDir: string;
  /** Listen address for raft peers. */
  raftListen: { host: string; port: number };
  advertiseRaft: string;
  advertiseHttp: string;
  /** The state machine; unused (never applied) on arbiters. */
  stateMachine: SnapshottableStateMachine;
  /** Form a new single-member cluster when the log is empty. */
  bootstrap: boolean;
  /**
   * Quorum-loss recovery: before raft starts, make this member the sole voter of a new cluster
   * built from its own log (recovery.ts). Once per data directory; refused on an arbiter.
   */
  forceNewCluster?: boolean;
  tickMs?: number;
  electionTimeoutTicks?: number;
  /** Take a snapshot (and let the log be compacted) every this many applied entries. */
  snapshotEntries?: number;
  /** How long a proposal or read may wait before failing with an unknown outcome. */
  requestTimeoutMs?: number;
  logger?: Logger;
  /** Raft addresses to dial instead of what these peers advertise (proxies, NAT). */
  peerAddresses?: ReadonlyMap<string, string>;
  /** The cluster secret: raft connections must authenticate, snapshot fetches carry its token. */
  peerSecret?: PeerSecret;
  /** How snapshots are fetched from other members' HTTP API (https with the cluster CA); default http. */
  memberHttp?: MemberHttp;
  /** Mutual TLS on raft connections (PeerTransportOptions.tls); may be combined with the secret. */
  peerTls?: PeerTransportOptions['tls'];
  /** Fault-suite mutation only: acknowledge writes before fsync. */
  unsafeNoSync?: boolean;
  /** Fault-suite mutation only: the leader commits (and answers) writes without a quorum. */
  unsafeEarlyAck?: boolean;
  /** Fault-suite mutation only: read barriers pass at once, so followers serve stale reads. */
  unsafeStaleReads?: boolean;
  /** Called when the member cannot continue (storage failure): the process should exit. */
  onFatal?: (err: unknown) => void;
  /** Receives raft log fsync times and heartbeat round trips (metrics). */
  observer?: MemberObserver;
}

/** A member's addresses, carried in conf change contexts; `client` (its etcd client URL) may be absent. */
interface MemberAddress { raft: string; http: string; client?: string; intent: Suffrage }
/**
 * What `GET /raft/snapshot` serves: the applied state at `index`, the term and membership of
 * the entry at `index` (absent in what older members serve: then the announced snapshot's are used),
 * and the member addresses.
 */
interface SnapshotDoc { index: number; term?: number; membership?: Membership; state: Uint8Array; registry: Record<string, MemberAddress> }
interface Waiter { resolve: (v: unknown) => void; reject: (e: unknown) => void; timer: NodeJS.Timeout }
interface ReadWaiter extends Waiter { index: number }

const PROPOSAL_BYTES_MAX = 4 * 1024 * 1024;
const SNAPSHOT_FETCH_TIMEOUT_MS = 60_000;
/** Wait between attempts while another membership change is uncommitted. */
const CONF_RETRY_MS = 100;
/** Most proposals and reads held while no leader is known; beyond it, "too many requests". */
const AWAITING_LEADER_MAX = 10_000;

export class RaftReplicator implements Replicator {
  private readonly log: LmdbRaftLog;
  private readonly storage: LmdbRaftStorage;
  private readonly raw: RawNode;
  private readonly transport: PeerTransport;
  private readonly sm: SnapshottableStateMachine;
  private readonly registry = new Map<string, MemberAddress>();
  /** Addresses learnt from envelopes of members not (yet) in the registry. */
  private readonly hints = new Map<string, PeerAdvertise>();
  private readonly proposals = new Map<number, Waiter>();
  private readonly reads = new Map<string, Waiter>();
  private readonly readyReads: ReadWaiter[] = [];
  private readonly confWaiters: Array<{ match: (cc: ConfChange) => boolean; w: Waiter }> = [];
  /** Proposals and reads raft dropped for want of a leader: tried again once one is known. */
  private readonly awaitingLeader = new Set<() => void>();
  /** The last heartbeat sent to each peer not yet answered: its stamp and when it left. */
  private readonly heartbeatsOut = new Map<string, { stamp: number; at: number }>();
  /** etcd's counters: leader changes seen (to a known leader), proposals that failed. */
  private leaderChangesSeen = 0;
  private proposalsFailed = 0;
  private lastLeader = '';
  private seq = 0;
  private readSeq = 0;
  /** Random per process: proposal and read ids from an earlier run never match this one's. */
  private readonly incarnation = randomInt(2 ** 47);
  private ticker: NodeJS.Timeout | undefined;
  private promoter: NodeJS.Timeout | undefined;
  private processing = false;
  private again = false;
  private closed = false;
  private lastSnapshotIndex: number;
  private lastLeaderContactMs = 0;
  private readonly tickMs: number;
  private readonly requestTimeoutMs: number;
  private readonly snapshotEntries: number;
  private readonly fetchingSnapshot = new Set<string>();
  /** Peer messages dropped before raft: malformed, or from a sender outside the configuration. */
  private readonly peerStats = { invalid: 0, nonMember: 0, foreignCluster: 0 };
  /** This member's cluster id (recovery.ts): set at bootstrap, adopted from the leader, or made by a leader without one. */
  private clusterId: string | undefined;
  /** When a frame from another cluster was last logged, per sender (one line per 10 s each). */
  private readonly foreignLogged = new Map<string, number>();
  private fatal: unknown;

  private constructor(private readonly opts: RaftReplicatorOptions, bound: { log: LmdbRaftLog; raw: RawNode; storage: LmdbRaftStorage }) {
    this.log = bound.log;
    this.storage = bound.storage;
    this.raw = bound.raw;
    this.sm = opts.stateMachine;
    this.tickMs = opts.tickMs ?? 100;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.snapshotEntries = opts.snapshotEntries ?? 10_000;
    this.lastSnapshotIndex = this.log.snapshot().index;
    this.clusterId = readClusterId(this.log);
    const saved = this.log.getMeta(REGISTRY_KEY);
    if (saved) for (const [id, a] of Object.entries(unpack(saved) as Record<string, MemberAddress>)) this.registry.set(id, a);
    this.registry.set(opts.id, { raft: opts.advertiseRaft, http: opts.advertiseHttp, intent: this.registry.get(opts.id)?.intent ?? opts.role });
    this.transport = new PeerTransport({
      id: opts.id,
      advertise: { raft: opts.advertiseRaft, http: opts.advertiseHttp },
      listenHost: opts.raftListen.host,
      listenPort: opts.raftListen.port,
      cluster: () => this.clusterId,
      onMessage: (from, msg, fromAdvertise, cluster) => this.receive(from, msg, fromAdvertise, cluster),
      frameBytesMax: 2 * PROPOSAL_BYTES_MAX + 1024 * 1024,
      ...(opts.peerSecret && { secret: opts.peerSecret }),
      ...(opts.peerTls && { tls: opts.peerTls }),
      ...(opts.logger && { logger: opts.logger }),
    });
  }

  /** Opens (or bootstraps) the member's log, starts the transport and the tick timer. */
  static async start(opts: RaftReplicatorOptions): Promise<RaftReplicator> {
    const log = new LmdbRaftLog({ dir: opts.dataDir, unsafeNoSync: opts.unsafeNoSync ?? false });
    const storage = new LmdbRaftStorage(log);
    const empty = log.lastIndex() === 0 && log.hardState() === undefined;
    if (empty && opts.bootstrap) {
      if (opts.role === 'arbiter') throw new InvalidArgumentError('an arbiter cannot bootstrap a cluster');
      await writeBootstrapState(log, opts.id, opts.advertiseRaft, opts.advertiseHttp);
      if (opts.stateMachine.appliedIndex() < 1) opts.stateMachine.applyNoop(1);
    }
    if (opts.role !== 'arbiter') {
      // Stopped between persisting a snapshot and restoring it: restore it now, before raft starts.
      const doc = await restoreStagedSnapshot(log, opts.stateMachine, opts.id);
      if (doc) opts.logger?.info({ index: doc.index, applied: opts.stateMachine.appliedIndex() }, 'snapshot_installed_on_start');
    }
    if (opts.forceNewCluster) await forceOnce(log, opts);
    let applied = opts.role === 'arbiter' ? undefined : Math.max(opts.stateMachine.appliedIndex(), log.snapshot().index);
    const commit = Math.max(storage.initialState().hardState.commit, log.firstIndex() - 1);
    if (applied !== undefined && applied > commit) {
      // Left by drivers that restored a snapshot's newer state without raising commit (see
      // docs/raft.md, "State ahead of the persisted commit"): raft starts applied at its commit
      // and the state machine skips the entries its state already includes.
      opts.logger?.warn({ applied, commit }, 'state_ahead_of_raft_commit');
      applied = commit;
    }
    const raw = new RawNode({
      id: opts.id,
      storage,
      rng: createRng(randomInt(2 ** 31)),
      electionTimeoutTicks: opts.electionTimeoutTicks ?? 10,
      heartbeatTicks: 1,
      ...(applied !== undefined && { applied }),
      maxSizePerMsgBytes: PROPOSAL_BYTES_MAX,
      preVote: true,
      checkQuorum: true,
      ...(opts.unsafeEarlyAck && { testMutation: 'commitWithoutQuorum' as const }),
    });
    const r = new RaftReplicator(opts, { log, raw, storage });
    await r.transport.start();
    r.ticker = setInterval(() => { r.raw.tick(); r.retryAwaitingLeader(); r.kick(); }, r.tickMs);
    r.promoter = setInterval(() => r.promoteCaughtUpLearners(), Math.max(200, r.tickMs * 5));
    opts.logger?.info({ node_id: opts.id, role: opts.role, bootstrapped: empty && opts.bootstrap, last_index: log.lastIndex(), applied: applied ?? 0 }, 'raft_started');
    // A sole voter need not wait out an election timeout: nobody else can be elected.
    const m = raw.membership;
    if (m.voters.length === 1 && m.voters[0] === opts.id && m.arbiters.length === 0) raw.campaign();
    r.kick();
    return r;
  }

  // ------------------------------------------------------------------ Replicator

  propose(command: Uint8Array): Promise<unknown> {
    this.checkOpen();
    if (this.opts.role === 'arbiter') return Promise.reject(arbiterRefusal(this.status()));
    const seq = ++this.seq;
    const data = pack([this.opts.id, this.incarnation, seq, command]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.proposals.delete(seq);
        this.proposalsFailed++;
        submitted.cancel();
        reject(new UnavailableError('the write was not confirmed in time; its outcome is unknown (leader change or partition)', 1, { reason: 'timeout' }));
      }, this.requestTimeoutMs);
      this.proposals.set(seq, { resolve, reject, timer });
      const submitted = this.submit(() => this.raw.propose(data), (err) => {
        clearTimeout(timer);
        this.proposals.delete(seq);
        this.proposalsFailed++;
        reject(err);
      });
    });
  }

  readBarrier(): Promise<void> {
    this.checkOpen();
    if (this.opts.role === 'arbiter') return Promise.reject(arbiterRefusal(this.status()));
    if (this.opts.unsafeStaleReads) return Promise.resolve();
    const key = `${this.opts.id}:${this.incarnation}:${++this.readSeq}`;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.reads.delete(key);
        const i = this.readyReads.findIndex((w) => w.timer === timer);
        if (i >= 0) this.readyReads.splice(i, 1);
        submitted.cancel();
        reject(new UnavailableError('the read barrier was not confirmed in time (no leader or partition)', 1, { reason: 'timeout' }));
      }, this.requestTimeoutMs);
      this.reads.set(key, { resolve: () => resolve(), reject, timer });
      const submitted = this.submit(() => this.raw.readIndex(new TextEncoder().encode(key)), (err) => {
        clearTimeout(timer);
        this.reads.delete(key);
        reject(err);
      });
    });
  }

  status(): NodeStatus {
    const lead = this.raw.leaderId;
    const addr = lead ? this.addressOf(lead) : undefined;
    const applied = this.opts.role === 'arbiter' ? this.raw.commitIndex : this.sm.appliedIndex();
    return {
      id: this.opts.id,
      isLeader: !this.closed && this.raw.role === 'leader',
      leader: addr?.raft ?? '',
      leaderHttp: addr?.http ?? '',
      ready: !this.closed && lead !== '' && applied >= this.raw.commitIndex,
    };
  }

  members(): Member[] {
    const m = this.raw.membership;
    const row = (id: string, suffrage: Suffrage): Member => {
      const a = this.addressOf(id);
      return { id, address: a?.raft ?? '', ...(a?.http && { httpAddress: a.http }), ...(a?.client && { clientUrl: a.client }), suffrage };
    };
    return [...m.voters.map((id) => row(id, 'voter')), ...m.learners.map((id) => row(id, 'learner')), ...m.arbiters.map((id) => row(id, 'arbiter'))]
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  stats(): RaftStats {
    const s = this.raw.status();
    const suffrage = s.suffrage;
    const state: RaftStats['state'] = this.closed ? 'shutdown' : s.role === 'leader' ? 'leader' : suffrage === 'learner' ? 'learner' : suffrage === 'arbiter' ? 'arbiter' : s.role;
    return {
      state,
      term: s.term,
      commit_index: s.commit,
      applied_index: this.opts.role === 'arbiter' ? s.applied : this.sm.appliedIndex(),
      last_log_index: s.lastIndex,
      last_log_term: s.lastTerm,
      num_peers: Math.max(0, this.members().length - 1),
      last_contact_ms: s.role === 'leader' ? 0 : this.lastLeaderContactMs ? Date.now() - this.lastLeaderContactMs : null,
      leader_changes_seen: this.leaderChangesSeen,
      proposals_pending: this.proposals.size,
      proposals_failed: this.proposalsFailed,
      id: this.opts.id,
      cluster_id: this.clusterId ?? null,
      role: this.opts.role,
      suffrage: suffrage ?? 'none',
      leader_id: s.lead,
      vote: s.vote,
      first_log_index: this.log.firstIndex(),
      snapshot_index: this.log.snapshot().index,
      payload_floor: this.log.trimmedTo(),
      log_size_bytes: this.log.sizeBytes(),
      lead_transferee: s.leadTransferee,
      transport: { ...this.transport.stats, ...this.peerStats },
      progress: s.progress,
    };
  }

  /**
   * Adds a member, re-adds one that lost its disk (`fresh`), or records a new address for an
   * existing one (an `update` change through the log, so every member learns it). Everything is
   * checked before anything is proposed, and addresses are learnt only from appended entries:
   * a refused request changes nothing, here or elsewhere.
   */
  async addMember(m: { id: string; address: string; httpAddress?: string; clientUrl?: string; suffrage: Suffrage; fresh?: boolean }): Promise<void> {
    this.requireLeader();
    // Every member validates conf entries as peer-validation.ts does: an id it would refuse
    // would stall replication for good, so the leader never proposes one.
    if (!isMemberId(m.id)) throw new InvalidArgumentError(`member id ${JSON.stringify(m.id)} must be 1-128 letters, digits, ".", "_" or "-"`);
    const current = this.raw.membership;
    const existing = suffrageOf(current, m.id);
    const wantsArbiter = m.suffrage === 'arbiter';
    if (existing !== undefined && (existing === 'arbiter') !== wantsArbiter) {
      throw new InvalidArgumentError(`${m.id} is a member as ${existing}; it cannot join as ${m.suffrage} (remove it first)`);
    }
    const known = this.registry.get(m.id);
    const client = m.clientUrl ?? known?.client;
    const address: MemberAddress = { raft: m.address, http: m.httpAddress ?? known?.http ?? '', ...(client && { client }), intent: m.suffrage };
    const context = pack(address);
    const add: ConfChange = { type: wantsArbiter ? 'addArbiter' : 'addLearner', nodeId: m.id, context };
    if (existing === undefined) { await this.confChange(add); return; }
    if (m.fresh && m.id !== this.opts.id) {
      // It lost its disk (and maybe its vote): take it out, then let it back in as a learner.
      if (existing === 'voter' && current.voters.length === 1) throw new InvalidArgumentError(`${m.id} is the last voter; it cannot be re-added empty`);
      this.opts.logger?.warn({ member: m.id }, 'member_rejoined_with_empty_disk_readding');
      await this.confChange({ type: 'remove', nodeId: m.id, context: new Uint8Array(0) });
      await this.confChange(add);
      return;
    }
    // Same id at a new address: the suffrage stays, the address goes through the log. A member
    // that still answers at its current raft address has not moved: the request is wrong (or
    // hostile), and following it would cut a live member off. One that never answered (raft
    // counts a new member as recently active until the next check; its match is still 0) has
    // nothing to cut off: etcd's `member add` then `member update` is allowed.
    const addressed = this.addressOf(m.id)?.raft;
    const pr = this.raw.status().progress[m.id];
    if (addressed !== undefined && addressed !== m.address && (m.id === this.opts.id || (pr?.recentActive && pr.match > 0))) {
      throw new ConureError('conflict', `${m.id} is active at ${addressed}; stop it before it joins from ${m.address}`);
    }
    await this.confChange({ type: 'update', nodeId: m.id, context: pack({ ...address, intent: known?.intent ?? address.intent }) });
  }

  async removeMember(id: string): Promise<void> {
    this.requireLeader();
    const m = this.raw.membership;
    if (m.voters.length === 1 && m.voters[0] === id) throw new InvalidArgumentError(`cannot remove ${id}: it is the last voter`);
    await this.confChange({ type: 'remove', nodeId: id, context: new Uint8Array(0) });
  }

  async promoteMember(id: string): Promise<void> {
    this.requireLeader();
    if (!this.raw.membership.learners.includes(id)) throw new InvalidArgumentError(`${id} is not a learner`);
    const a = this.registry.get(id);
    await this.confChange({ type: 'addVoter', nodeId: id, context: pack({ raft: a?.raft ?? '', http: a?.http ?? '', ...(a?.client && { client: a.client }), intent: 'voter' } satisfies MemberAddress) });
  }

  /**
   * On the leader: hands leadership to `toId`, or to the most caught-up voter, and waits until
   * it has moved (bounded by two election timeouts). Elsewhere: a no-op.
   */
  async transferLeadership(toId?: string): Promise<void> {
    if (this.closed || this.raw.role !== 'leader') return;
    const s = this.raw.status();
    const candidates = s.membership.voters.filter((v) => v !== this.opts.id);
    const target = toId ?? candidates.sort((a, b) => (s.progress[b]?.match ?? 0) - (s.progress[a]?.match ?? 0))[0];
    if (target === undefined || target === this.opts.id) return;
    if (!s.membership.voters.includes(target)) throw new InvalidArgumentError(`${target} is not a voter`);
    this.raw.transferLeadership(target);
    this.kick();
    const deadline = Date.now() + 2 * (this.opts.electionTimeoutTicks ?? 10) * this.tickMs + 500;
    while (Date.now() < deadline) {
      if (this.raw.role !== 'leader') return;
      await sleep(this.tickMs / 2);
    }
    throw new ConureError('timeout', `leadership did not move to ${target} in time`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.transferLeadership().catch((err) => this.opts.logger?.warn({ err: (err as Error).message }, 'leadership_transfer_on_close_failed'));
    this.closed = true;
    clearInterval(this.ticker);
    clearInterval(this.promoter);
    while (this.processing) await sleep(5);
    const err = new ClosedError('replicator');
    for (const w of this.proposals.values()) { clearTimeout(w.timer); w.reject(err); }
    for (const w of this.reads.values()) { clearTimeout(w.timer); w.reject(err); }
    for (const w of this.readyReads) { clearTimeout(w.timer); w.reject(err); }
    for (const c of this.confWaiters) { clearTimeout(c.w.timer); c.w.reject(err); }
    this.proposals.clear(); this.reads.clear(); this.readyReads.length = 0; this.confWaiters.length = 0; this.awaitingLeader.clear();
    await this.transport.close();
    await this.log.close();
  }

  /** The state to send a member that needs a snapshot (served over HTTP to the follower). */
  exportSnapshot(): { index: number; data: Uint8Array } {
    const state = this.opts.role === 'arbiter' ? { index: 0, data: new Uint8Array(0) } : this.sm.exportState();
    // The state is the one applied now, usually past the index of the snapshot raft announced:
    // it carries its own index, term and membership, and the receiver installs it as a snapshot there.
    // (Not when this log lacks the entry: a state left ahead of its commit, see start().)
    const term = this.raw.termAt(state.index);
    const doc: SnapshotDoc = { index: state.index, ...(term > 0 && { term, membership: this.raw.membershipAt(state.index) }), state: state.data, registry: Object.fromEntries(this.registry) };
    return { index: state.index, data: pack(doc) };
  }

  /** HTTP addresses of the other voters, for a joiner or a follower fetching a snapshot. */
  httpAddressOf(id: string): string | undefined { return this.addressOf(id)?.http || undefined; }

  // ------------------------------------------------------------------ internals

  /**
   * Hands a proposal or read to raft. One that raft drops because no leader is known (an
   * election, a partition) or leadership is moving is held and handed again once a leader is
   * known, as etcd holds it; the caller's request timeout bounds the wait. Other refusals go to
   * `fail` at once. `cancel` forgets a held one (its timeout fired).
   */
  private submit(send: () => void, fail: (err: unknown) => void): { cancel(): void } {
    const attempt = (): void => {
      this.awaitingLeader.delete(attempt);
      try {
        send();
      } catch (err) {
        if (!(err instanceof ProposalDroppedError && (err.reason === 'no-leader' || err.reason === 'transferring'))) fail(asClientError(err));
        else if (this.awaitingLeader.size >= AWAITING_LEADER_MAX) fail(new UnavailableError('too many requests are waiting for a leader', 1, { reason: 'too_many_requests' }));
        else this.awaitingLeader.add(attempt);
        return;
      }
      this.kick();
    };
    attempt();
    return { cancel: () => this.awaitingLeader.delete(attempt) };
  }

  /** Hands held proposals and reads to raft again, now that a leader may be known. */
  private retryAwaitingLeader(): void {
    if (this.awaitingLeader.size === 0 || this.raw.leaderId === '') return;
    for (const attempt of [...this.awaitingLeader]) attempt();
  }

  private checkOpen(): void {
    if (this.closed) throw new ClosedError('replicator');
    if (this.fatal) throw new UnavailableError('this member stopped after a storage failure', 5);
  }

  private requireLeader(): void {
    this.checkOpen();
    if (this.raw.role !== 'leader') {
      const st = this.status();
      throw new NotLeaderError(st.leader || undefined, st.leaderHttp || undefined);
    }
  }

  private addressOf(id: string): MemberAddress | undefined {
    const a = this.registry.get(id);
    if (a) return a;
    const hint = this.hints.get(id);
    return hint ? { ...hint, intent: 'voter' } : undefined;
  }

  /**
   * Proposes one membership change and resolves when it is applied here. While another change
   * is still uncommitted (raft allows one at a time) it retries, within the request timeout.
   */
  private async confChange(cc: ConfChange): Promise<void> {
    const deadline = Date.now() + this.requestTimeoutMs;
    for (;;) {
      try {
        return await this.proposeConfChangeOnce(cc, deadline - Date.now());
      } catch (err) {
        const pending = err instanceof UnavailableError && err.cause instanceof ProposalDroppedError && err.cause.reason === 'conf-pending';
        if (!pending || Date.now() + CONF_RETRY_MS > deadline) throw err;
        await sleep(CONF_RETRY_MS);
        this.requireLeader();
      }
    }
  }

  private proposeConfChangeOnce(cc: ConfChange, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.confWaiters.findIndex((c) => c.w.timer === timer);
        if (i >= 0) this.confWaiters.splice(i, 1);
        reject(new UnavailableError(`the membership change (${cc.type} ${cc.nodeId}) was not committed in time`, 2));
      }, Math.max(1, timeoutMs));
      this.confWaiters.push({ match: (c) => c.type === cc.type && c.nodeId === cc.nodeId, w: { resolve: () => resolve(), reject, timer } });
      try {
        this.raw.proposeConfChange(cc);
      } catch (err) {
        clearTimeout(timer);
        this.confWaiters.pop();
        reject(asClientError(err));
        return;
      }
      this.kick();
    });
  }

  /**
   * Everything from a peer passes here: the message is validated (peer-validation.ts), and a
   * member that already has a configuration takes messages only from members it knows (of the
   * configuration or the address registry). A member still waiting to join (empty
   * configuration) hears from whoever leads the cluster it joins. This stops outsiders that
   * make up an id; one that forges a member's id is stopped only by the cluster secret.
   */
  private receive(from: string, raw: unknown, fromAdvertise: PeerAdvertise | undefined, cluster: unknown): void {
    if (this.closed) return;
    let m: Message;
    try {
      m = validatePeerMessage(raw, from, this.opts.id);
      if (cluster !== undefined && (typeof cluster !== 'string' || !CLUSTER_ID.test(cluster))) throw new InvalidArgumentError('the envelope\'s cluster id is malformed');
    } catch (err) {
      this.peerStats.invalid++;
      this.opts.logger?.warn({ from, err: (err as Error).message }, 'peer_message_invalid');
      return;
    }
    // Known: in the configuration, or in the address registry (which a member installing a
    // snapshot has in full before its log catches up with the configuration it will have).
    const config = this.raw.membership;
    if (allMembers(config).length > 0 && !this.registry.has(from) && !allMembers(config).includes(from)) {
      this.peerStats.nonMember++;
      this.opts.logger?.debug({ from, type: m.type }, 'peer_message_from_non_member');
      return;
    }
    // After the membership check, so that an outsider cannot make a member adopt its cluster id.
    if (typeof cluster === 'string' && !this.sameCluster(from, m, cluster)) return;
    if (fromAdvertise) {
      const known = this.registry.get(from);
      if (!known) this.hints.set(from, fromAdvertise);
      else if (!known.http && fromAdvertise.http) this.registry.set(from, { ...known, http: fromAdvertise.http });
    }
    if (m.from === this.raw.leaderId || m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') this.lastLeaderContactMs = Date.now();
    if (m.type === 'heartbeatResp') {
      const out = this.heartbeatsOut.get(m.from);
      if (out?.stamp === m.index) {
        this.heartbeatsOut.delete(m.from);
        this.opts.observer?.peerRoundTripSeconds(m.from, (performance.now() - out.at) / 1000);
      }
    }
    if (m.type === 'snap' && m.snapshot && this.opts.role !== 'arbiter') {
      void this.receiveSnapshot(m);
      return;
    }
    try {
      this.raw.step(m);
    } catch (err) {
      this.opts.logger?.warn({ err: (err as Error).message, from, type: m.type }, 'raft_step_failed');
      return;
    }
    this.kick();
  }

  /** A `snap` message carries only metadata; the state is fetched from the sender over HTTP. */
  private async receiveSnapshot(m: Message): Promise<void> {
    const key = `${m.from}:${m.snapshot!.meta.index}`;
    if (this.fetchingSnapshot.has(key)) return;
    this.fetchingSnapshot.add(key);
    try {
      const http = this.addressOf(m.from)?.http;
      if (!http) throw new Error(`no HTTP address known for ${m.from}`);
      const headers: Record<string, string> = this.opts.peerSecret ? { authorization: `Bearer ${this.opts.peerSecret.httpToken}` } : {};
      const members = this.opts.memberHttp ?? new MemberHttp();
      const res = await members.fetch(`${members.url(http)}/raft/snapshot`, { headers, signal: AbortSignal.timeout(SNAPSHOT_FETCH_TIMEOUT_MS) });
      if (!res.ok) throw new Error(`GET /raft/snapshot from ${m.from} answered ${res.status}`);
      const stateIndex = Number(res.headers.get('x-conure-snapshot-index'));
      if (!(stateIndex >= m.snapshot!.meta.index)) throw new Error(`${m.from} served state at index ${stateIndex}, behind the snapshot it announced (${m.snapshot!.meta.index})`);
      const data = new Uint8Array(await res.arrayBuffer());
      if (this.closed) return;
      const doc = unpack(data) as SnapshotDoc;
      if (doc.index !== stateIndex) throw new Error(`${m.from} served state at index ${doc.index} under the header index ${stateIndex}`);
      // Installed at the state's own index (validated as any peer message), so that raft commits up to it.
      const meta = doc.term === undefined ? m.snapshot!.meta : { index: doc.index, term: doc.term, membership: doc.membership };
      const snap = validatePeerMessage({ ...m, snapshot: { meta, data: new Uint8Array(0) } }, m.from, this.opts.id);
      this.raw.step({ ...snap, snapshot: { meta: snap.snapshot!.meta, data } });
      this.kick();
    } catch (err) {
      this.opts.logger?.warn({ err: (err as Error).message, from: m.from }, 'snapshot_fetch_failed');
    } finally {
      this.fetchingSnapshot.delete(key);
    }
  }

  /** Schedules the driver loop (coalescing repeated calls). */
  private kick(): void {
    if (this.closed || this.fatal) return;
    if (this.processing) { this.again = true; return; }
    this.processing = true;
    setImmediate(() => void this.process());
  }

  private async process(): Promise<void> {
    try {
      do {
        this.again = false;
        while (!this.closed && this.raw.hasReady()) await this.handleReady(this.raw.ready());
      } while (this.again && !this.closed);
    } catch (err) {
      this.fatal = err;
      this.opts.logger?.fatal({ err }, 'raft_driver_failed');
      this.opts.onFatal?.(err);
    } finally {
      this.processing = false;
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    // 1. Durability first.
    if (rd.hardState || rd.entries.length > 0 || rd.snapshot) {
      this.learnAddresses(rd.entries); // the configuration is in force from append, so its addresses are too
      await this.storage.persist(rd.hardState ?? undefined, rd.entries, rd.snapshot ?? undefined);
      if (rd.mustSync) {
        const started = performance.now();
        await this.storage.sync();
        this.opts.observer?.walFsyncSeconds((performance.now() - started) / 1000);
      }
    }
    // 2. A snapshot is restored once it, and the commit it carries, are durable (mustSync).
    if (rd.snapshot) await this.installSnapshot(rd.snapshot);
    if (rd.softState) {
      this.opts.logger?.info({ node_id: this.opts.id, role: rd.softState.role, leader: rd.softState.lead, term: this.raw.term }, 'raft_role_changed');
      if (rd.softState.lead === '') this.failReadsAwaitingLeader();
      else this.retryAwaitingLeader();
      // As etcd: a change to a known leader from another one, or from none.
      if (rd.softState.lead !== '' && rd.softState.lead !== this.lastLeader) this.leaderChangesSeen++;
      if (rd.softState.lead === this.opts.id && this.clusterId === undefined) {
        // A cluster from before cluster ids: its first leader names it; followers adopt the id.
        this.clusterId = newClusterId();
        writeClusterId(this.log, this.clusterId);
        this.opts.logger?.info({ cluster_id: this.clusterId }, 'cluster_id_created');
      }
      this.lastLeader = rd.softState.lead;
    }
    // 3. Then tell the others.
    for (const m of rd.messages) this.send(m);
    // 4. Apply.
    this.applyCommitted(rd.committedEntries); // entries the restored state already covers are ignored by apply
    // 5. Reads whose index is now known.
    for (const rs of rd.readStates) {
      const key = new TextDecoder().decode(rs.context);
      const w = this.reads.get(key);
      if (!w) continue;
      this.reads.delete(key);
      this.readyReads.push({ ...w, index: rs.index });
    }
    this.releaseReads();
    // 6. Housekeeping.
    if (rd.compactTo > 0) this.storage.compact(rd.compactTo);
    if (rd.arbiterTrimTo > 0) this.storage.trimPayloads(rd.arbiterTrimTo);
    this.raw.advance();
    await this.maybeSnapshot();
  }

  private async installSnapshot(snap: Snapshot): Promise<void> {
    if (this.opts.role === 'arbiter' || snap.data.length === 0) return;
    const doc = await restoreStagedSnapshot(this.log, this.sm, this.opts.id);
    for (const [id, a] of Object.entries(doc?.registry ?? {})) if (id !== this.opts.id) this.registry.set(id, a);
    this.opts.logger?.info({ index: snap.meta.index, applied: this.sm.appliedIndex() }, 'snapshot_installed');
  }

  private send(m: Message): void {
    const addr = this.opts.peerAddresses?.get(m.to) ?? this.addressOf(m.to)?.raft;
    if (!addr) {
      this.opts.logger?.debug({ to: m.to, type: m.type }, 'raft_message_no_address');
      return;
    }
    if (m.type === 'snap') {
      // The recipient fetches the state over HTTP; the message carries metadata only.
      this.transport.send(m.to, addr, { ...m, snapshot: m.snapshot ? { meta: m.snapshot.meta, data: new Uint8Array(0) } : null });
      this.raw.reportSnapshot(m.to, true);
      return;
    }
    if (m.type === 'heartbeat' && this.opts.observer) {
      // One measured at a time per peer; one unanswered for a second (lost) gives way.
      const out = this.heartbeatsOut.get(m.to);
      if (!out || performance.now() - out.at > 1000) this.heartbeatsOut.set(m.to, { stamp: m.index, at: performance.now() });
    }
    this.transport.send(m.to, addr, m);
  }

  /**
   * Whether a frame from a member of cluster `cluster` may reach raft. A member without an id
   * yet (joining, or from before ids) adopts its leader's: the first append, snapshot or
   * heartbeat it accepts names the cluster it belongs to. After that, frames of another cluster
   * (a member lost before a `--force-new-cluster` recovery, back with its old disk) are dropped.
   * Frames without an id (members from before ids) pass: the configuration check still applies.
   */
  private sameCluster(from: string, m: Message, cluster: string): boolean {
    if (this.clusterId === cluster) return true;
    if (this.clusterId === undefined) {
      if (m.type === 'app' || m.type === 'snap' || m.type === 'heartbeat') {
        writeClusterId(this.log, cluster);
        this.clusterId = cluster;
        this.opts.logger?.info({ cluster_id: cluster, from }, 'cluster_id_adopted');
      }
      return true;
    }
    this.peerStats.foreignCluster++;
    const now = Date.now();
    if (now - (this.foreignLogged.get(from) ?? 0) > 10_000) {
      this.foreignLogged.set(from, now);
      this.opts.logger?.warn({ from, type: m.type, their_cluster_id: cluster, cluster_id: this.clusterId },
        'peer_message_from_another_cluster: the sender belongs to another cluster (a member lost before a --force-new-cluster recovery?); wipe its data directory and join it anew');
    }
    return false;
  }

  private learnAddresses(entries: readonly Entry[]): void {
    let changed = false;
    for (const e of entries) {
      if (e.type !== 'conf') continue;
      const cc = decodeConfChange(e.data);
      if (cc.type === 'remove' || cc.context.length === 0) continue;
      const a = unpack(cc.context) as MemberAddress;
      if (a && typeof a.raft === 'string' && a.raft) {
        this.registry.set(cc.nodeId, a);
        changed = true;
      }
    }
    if (changed) this.saveRegistry();
  }

  private saveRegistry(): void {
    this.log.putMeta(REGISTRY_KEY, pack(Object.fromEntries(this.registry)));
  }

  private applyCommitted(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const results: Array<{ seq: number; result: unknown }> = [];
    const confs: ConfChange[] = [];
    const applyAll = () => {
      for (const e of entries) {
        if (e.type === 'conf') {
          confs.push(decodeConfChange(e.data));
          if (this.opts.role !== 'arbiter') this.sm.applyNoop(e.index);
          continue;
        }
        if (this.opts.role === 'arbiter') continue;
        if (e.data.length === 0) { this.sm.applyNoop(e.index); continue; }
        const [origin, incarnation, seq, command] = unpack(e.data) as [string, number, number, Uint8Array];
        const result = this.sm.apply(e.index, command);
        if (origin === this.opts.id && incarnation === this.incarnation) results.push({ seq, result });
      }
    };
    if (this.opts.role !== 'arbiter' && this.sm.batch) this.sm.batch(applyAll); else applyAll();
    for (const { seq, result } of results) {
      const w = this.proposals.get(seq);
      if (!w) continue;
      this.proposals.delete(seq);
      clearTimeout(w.timer);
      if (result instanceof Error) w.reject(result); else w.resolve(result);
    }
    for (const cc of confs) {
      const i = this.confWaiters.findIndex((c) => c.match(cc));
      if (i < 0) continue;
      const [c] = this.confWaiters.splice(i, 1);
      clearTimeout(c!.w.timer);
      c!.w.resolve(undefined);
    }
  }

  private releaseReads(): void {
    const applied = this.sm.appliedIndex();
    for (let i = this.readyReads.length - 1; i >= 0; i--) {
      const w = this.readyReads[i]!;
      if (applied >= w.index) {
        this.readyReads.splice(i, 1);
        clearTimeout(w.timer);
        w.resolve(undefined);
      }
    }
  }

  private failReadsAwaitingLeader(): void {
    // Read requests in flight to a leader that is gone are dropped by raft; fail them fast.
    for (const [key, w] of this.reads) {
      clearTimeout(w.timer);
      w.reject(new UnavailableError('leadership changed before the read was confirmed; retry', 1, { reason: 'leader_changed' }));
      this.reads.delete(key);
    }
  }

  private async maybeSnapshot(): Promise<void> {
    if (this.opts.role === 'arbiter') return;
    const applied = this.sm.appliedIndex();
    if (applied - this.lastSnapshotIndex < this.snapshotEntries) return;
    const index = Math.min(applied, this.raw.applied);
    const term = this.raw.termAt(index);
    if (term === 0 || index <= this.log.snapshot().index) return;
    await this.sm.sync(); // the state must be durable before the log may be compacted under it
    this.storage.markSnapshot(index, term, this.raw.membershipAt(index));
    this.raw.snapshotCreated(index);
    this.lastSnapshotIndex = index;
    this.opts.logger?.info({ index }, 'snapshot_created');
  }

  /** Leader only: promotes learners that joined as voters once they have caught up. */
  private promoteCaughtUpLearners(): void {
    if (this.closed || this.raw.role !== 'leader') return;
    const s = this.raw.status();
    for (const id of s.membership.learners) {
      const a = this.registry.get(id);
      const pr = s.progress[id];
      // Caught up: replicating normally, recently heard from, and within a few entries of commit.
      if (a?.intent !== 'voter' || !pr || pr.state !== 'replicate' || !pr.recentActive || pr.match === 0 || pr.match + 16 < s.commit) continue;
      this.promoteMember(id).then(
        () => this.opts.logger?.info({ member: id }, 'learner_promoted'),
        (err) => this.opts.logger?.debug({ member: id, err: (err as Error).message }, 'learner_promotion_deferred'),
      );
      return; // one membership change at a time
    }
  }
}

/** Raft's drop errors become retryable 503s with Retry-After; the rest keep their codes. */
/**
 * Writes the raft state of a brand-new single-member cluster whose only voter is `id`: the
 * bootstrap snapshot at index 1 (term 1) and the member's addresses. Used by `--bootstrap` and
 * by `conurectl snapshot restore`. Durable on resolve.
 */
export async function writeBootstrapState(log: LmdbRaftLog, id: string, advertiseRaft: string, advertiseHttp: string): Promise<void> {
  await new LmdbRaftStorage(log).persist({ term: 1, vote: '', commit: 1 }, [], bootstrapSnapshot({ voters: [id], learners: [], arbiters: [] }));
  log.putMeta(REGISTRY_KEY, pack({ [id]: { raft: advertiseRaft, http: advertiseHttp, intent: 'voter' } satisfies MemberAddress }));
  writeClusterId(log, newClusterId());
  await log.sync();
}

/**
 * `--force-new-cluster`: rewrites the log (recovery.ts) unless this data directory was recovered
 * already and is still in the cluster it made then.
 */
async function forceOnce(log: LmdbRaftLog, opts: RaftReplicatorOptions): Promise<void> {
  if (opts.role === 'arbiter') throw new InvalidArgumentError('an arbiter holds no state: it cannot seed a new cluster (--force-new-cluster); recover from a voter, or restore a backup');
  const done = forcedMarker(log);
  if (done && done.cluster === readClusterId(log)) {
    opts.logger?.warn({ cluster_id: done.cluster, index: done.index, at: done.at }, 'force_new_cluster_already_done: this data directory was recovered before; starting normally (the flag can be removed)');
    return;
  }
  const r = await forceNewCluster(log, { id: opts.id, raft: opts.advertiseRaft, http: opts.advertiseHttp });
  opts.logger?.warn({ cluster_id: r.cluster, last_index: r.lastIndex, last_term: r.lastTerm, old_commit: r.commit, kept_uncommitted: r.lastIndex - r.commit, removed: r.removed, term: r.term, index: r.index },
    'forced_new_cluster: this member is now the sole voter of a new cluster; join others to it');
}

/**
 * Restores the snapshot state staged in the raft log (by the persist of its mark) into the
 * state machine, unless the state machine already holds it; merges the snapshot's member
 * addresses into the persisted registry; then drops the staged copy. Each step is durable
 * before the next, so a member stopped anywhere in between repeats only what is left.
 */
async function restoreStagedSnapshot(log: LmdbRaftLog, sm: SnapshottableStateMachine, selfId: string): Promise<SnapshotDoc | undefined> {
  const staged = log.stagedSnapshot();
  if (!staged) return undefined;
  const doc = unpack(staged) as SnapshotDoc;
  // Restored at the state's own index (≥ the snapshot's when an older leader served it): raft
  // then hands over the entries after the snapshot, and the state machine skips those it holds.
  if (sm.appliedIndex() < doc.index) await sm.restoreState(doc.index, doc.state);
  const saved = log.getMeta(REGISTRY_KEY);
  const registry = saved ? (unpack(saved) as Record<string, MemberAddress>) : {};
  for (const [id, a] of Object.entries(doc.registry ?? {})) if (id !== selfId) registry[id] = a;
  log.putMeta(REGISTRY_KEY, pack(registry));
  await log.dropStagedSnapshot();
  return doc;
}

function asClientError(err: unknown): unknown {
  if (!(err instanceof ProposalDroppedError)) return err;
  const reason = err.reason === 'uncommitted-limit' || err.reason === 'read-queue-full' ? 'too_many_requests' : err.reason === 'no-leader' ? 'no_leader' : undefined;
  return new UnavailableError(`${err.message}; retry shortly`, 1, { cause: err, ...(reason && { reason }) });
}

function arbiterRefusal(st: NodeStatus): UnavailableError {
  return new UnavailableError(`this member is an arbiter: it holds no data and serves no reads or writes${st.leaderHttp ? `; the leader is at http://${st.leaderHttp}` : ''}`, 1);
}

function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }
