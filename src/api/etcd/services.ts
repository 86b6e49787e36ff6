import { crc32 } from 'node:zlib';
import type { Member, Replicator } from '../../seams/index.js';
import { NotLeaderError } from '../../util/index.js';
import type { StateStore } from '../../storage/index.js';
import { MvccError, clusterIdOf, memberIdOf, type MvccService, encodeSnapshot, type Alarm, type AlarmKind, type WatchHub } from '../../mvcc/index.js';
import type { Header } from './codec.js';

/**
 * The etcd version Conure reports: etcd 3.4's client API, at the patch level whose behaviour it
 * has, including watch progress requests answered once every watch of the stream is synced.
 * kube-apiserver turns on RequestWatchProgress (consistent reads from its cache) from 3.4.31.
 */
export const ETCD_API_VERSION = '3.4.31';

/** An etcd cluster member as the Cluster service reports it. */
export interface EtcdMember {
  /** uint64 as a decimal string (see mvcc/ids.ts). */
  ID: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export interface EtcdServicesOptions {
  mvcc: MvccService;
  hub: WatchHub;
  store: StateStore;
  /** Names the cluster; its FNV-1a hash is the etcd cluster id. Default "conure". */
  clusterName?: string;
  /** This member's advertised client URL (e.g. http://10.0.0.5:2379), reported in member lists. */
  clientUrl?: string;
  /** Carries a membership change to the leader when this member is a follower (as etcd forwards its proposals). */
  forwardMembership?: MembershipForwarder;
}

/**
 * Sends an etcd Cluster request (`add`: MemberAdd, …, in the JSON gateway's form) to the leader,
 * as a follower does on behalf of its client. Resolves once the leader has committed the change;
 * rejects with the leader's error.
 */
export type MembershipForwarder = (method: 'add' | 'remove' | 'update' | 'promote', body: Record<string, unknown>) => Promise<void>;

/** How long a follower waits, after the leader committed a forwarded change, to see it applied itself. */
const FORWARDED_CHANGE_VISIBLE_MS = 5000;

/**
 * The service layer behind the etcd v3 API: KV/Lease/Watch live in MvccService and WatchHub;
 * this adds the Cluster and Maintenance operations, mapped onto the Replicator's membership
 * and the StateStore, and builds response headers. Handlers call exactly one method here.
 *
 * Member mapping: a Conure member `id` is etcd member `memberIdOf(id)` named `id`, peer URL
 * `http://<raft address>`. MemberAdd only receives peer URLs (etcd's request has no name), so
 * the new Conure member's id is its peer address `host-port` (memberIdForAddress); learners are added with suffrage
 * `learner`. Arbiters are listed as ordinary (non-learner) members. Client URLs are those each
 * member published with its join (`ClientURL`), and this member's own.
 * Errors: MvccError (`member_not_found`, `member_not_learner`, `peer_url_exists`, `invalid`) and
 * whatever the Replicator throws (e.g. `unsupported` on a standalone node).
 */
export class EtcdServices {
  readonly mvcc: MvccService;
  readonly hub: WatchHub;
  readonly clusterId: string;
  readonly memberId: string;
  /**
   * This member's advertised client URL. Set once the client port is bound (it may be port 0
   * until then); other members' URLs come from the membership (published when they join).
   */
  clientUrl: string | undefined;

  constructor(private readonly opts: EtcdServicesOptions) {
    this.mvcc = opts.mvcc;
    this.hub = opts.hub;
    this.clientUrl = opts.clientUrl;
    this.clusterId = clusterIdOf(opts.clusterName ?? 'conure').toString();
    this.memberId = memberIdOf(this.replicator.status().id).toString();
  }

  private get replicator(): Replicator { return this.opts.mvcc.replicator; }

  /** Whether this member knows a leader (itself or another): clientv3's WithRequireLeader asks. */
  hasLeader(): boolean {
    const st = this.replicator.status();
    return st.isLeader || st.leader !== '';
  }

  /** A response header at the current revision (or `revision`). */
  header(revision?: number): Header {
    return { ...this.clusterHeader(), revision: String(revision ?? this.mvcc.sm.currentRevision()) };
  }

  /** The header etcd's Cluster service sends: no revision. */
  clusterHeader(): Omit<Header, 'revision'> {
    return { cluster_id: this.clusterId, member_id: this.memberId, raft_term: String(this.replicator.stats().term) };
  }

  // ---- Cluster ----

  memberList(): EtcdMember[] {
    const self = this.replicator.status().id;
    return this.replicator.members().map((m) => this.toEtcdMember(m, m.id === self));
  }

  async memberAdd(peerURLs: string[], isLearner: boolean): Promise<{ member: EtcdMember; members: EtcdMember[] }> {
    if (peerURLs.length === 0) throw new MvccError('invalid', 'no peer URL given');
    const address = addressOf(peerURLs[0]!);
    const existing = this.replicator.members();
    if (existing.some((m) => m.address === address)) throw new MvccError('peer_url_exists', `peer URL ${peerURLs[0]} is already a member`);
    const id = memberIdForAddress(address);
    await this.onLeader(() => this.replicator.addMember({ id, address, suffrage: isLearner ? 'learner' : 'voter' }),
      (f) => f('add', { peerURLs, isLearner }),
      () => this.replicator.members().some((m) => m.address === address));
    const members = this.memberList();
    const member = members.find((m) => m.name === id) ?? this.toEtcdMember({ id, address, suffrage: isLearner ? 'learner' : 'voter' }, false);
    return { member, members };
  }

  async memberRemove(id: string): Promise<EtcdMember[]> {
    const conureId = this.conureId(id).id;
    await this.onLeader(() => this.replicator.removeMember(conureId), (f) => f('remove', { ID: id }),
      () => !this.replicator.members().some((m) => m.id === conureId));
    return this.memberList();
  }

  async memberUpdate(id: string, peerURLs: string[]): Promise<EtcdMember[]> {
    if (peerURLs.length === 0) throw new MvccError('invalid', 'no peer URL given');
    const m = this.conureId(id);
    const address = addressOf(peerURLs[0]!);
    await this.onLeader(() => this.replicator.addMember({ id: m.id, address, ...(m.httpAddress ? { httpAddress: m.httpAddress } : {}), suffrage: m.suffrage }),
      (f) => f('update', { ID: id, peerURLs }),
      () => this.replicator.members().some((x) => x.id === m.id && x.address === address));
    return this.memberList();
  }

  async memberPromote(id: string): Promise<EtcdMember[]> {
    const m = this.conureId(id);
    if (m.suffrage !== 'learner') throw new MvccError('member_not_learner', `member ${m.id} is not a learner`);
    await this.onLeader(() => this.replicator.promoteMember(m.id), (f) => f('promote', { ID: id }),
      () => this.replicator.members().some((x) => x.id === m.id && x.suffrage === 'voter'));
    return this.memberList();
  }

  /**
   * Runs a membership change here when this member leads; on a follower that knows its leader,
   * forwards it there and waits (bounded) until this member has applied it, so the member list
   * it answers with shows the change. Without a forwarder, or a known leader, the NotLeaderError
   * stands (FailedPrecondition "etcdserver: not leader").
   */
  private async onLeader(local: () => Promise<void>, remote: (f: MembershipForwarder) => Promise<void>, visible: () => boolean): Promise<void> {
    const fwd = this.opts.forwardMembership;
    try {
      await local();
      return;
    } catch (err) {
      if (!(err instanceof NotLeaderError) || !err.leaderHttp || !fwd) throw err;
    }
    await remote(fwd);
    for (const deadline = Date.now() + FORWARDED_CHANGE_VISIBLE_MS; !visible() && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 50));
  }

  // ---- Maintenance ----

  status(): {
    version: string; dbSize: number; dbSizeInUse: number; leader: string; raftIndex: number; raftTerm: number;
    raftAppliedIndex: number; errors: string[]; isLearner: boolean;
  } {
    const st = this.replicator.status();
    const stats = this.replicator.stats();
    const members = this.replicator.members();
    const leader = st.isLeader ? st.id : members.find((m) => m.address === st.leader)?.id;
    const size = this.opts.store.sizeBytes();
    return {
      version: ETCD_API_VERSION,
      dbSize: size,
      dbSizeInUse: size,
      leader: leader ? memberIdOf(leader).toString() : '0',
      raftIndex: stats.commit_index,
      raftTerm: stats.term,
      raftAppliedIndex: stats.applied_index,
      errors: this.mvcc.sm.alarms().map((a) => `memberID:${a.memberId} alarm:${a.alarm.toUpperCase()} `),
      isLearner: members.find((m) => m.id === st.id)?.suffrage === 'learner',
    };
  }

  /**
   * etcd's `/health`: true when no alarm is raised, a leader is known and a linearizable read
   * (a ReadIndex round through the quorum) completes within `timeoutMs`.
   */
  async health(timeoutMs: number): Promise<boolean> {
    if (this.mvcc.sm.alarms().length > 0 || !this.replicator.status().leader) return false;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), timeoutMs); });
    try {
      return await Promise.race([this.replicator.readBarrier().then(() => true, () => false), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** CRC-32 over every bucket of the store (etcd's Hash: the whole backend). */
  hash(): number {
    let h = 0;
    for (const b of this.opts.store.buckets()) {
      h = crc32(b, h);
      for (const { key, value } of this.opts.store.range(b)) h = crc32(value, crc32(key, h));
    }
    return h >>> 0;
  }

  hashKv(revision: bigint): { hash: number; revision: number; compactRevision: number } {
    return this.mvcc.sm.hashKv(revision);
  }

  /** A consistent snapshot of the whole store, in chunks of at most `chunkBytes`. */
  *snapshot(chunkBytes = 32 * 1024): Generator<{ blob: Buffer; remainingBytes: number }> {
    const blob = encodeSnapshot(this.opts.store);
    let off = 0;
    do {
      const chunk = blob.subarray(off, off + chunkBytes);
      off += chunk.length;
      yield { blob: chunk, remainingBytes: blob.length - off };
    } while (off < blob.length);
  }

  async moveLeader(targetId: string): Promise<void> {
    await this.replicator.transferLeadership(this.conureId(targetId).id);
  }

  /** LMDB reuses freed pages itself; there is nothing to defragment. A harmless no-op. */
  defragment(): void {}

  async alarm(action: 'get' | 'activate' | 'deactivate', memberId: string, alarm: AlarmKind | 'none'): Promise<Alarm[]> {
    if (action === 'get') {
      return this.mvcc.sm.alarms().filter((a) => (memberId === '0' || a.memberId === memberId) && (alarm === 'none' || a.alarm === alarm));
    }
    if (alarm === 'none') throw new MvccError('invalid', 'an alarm type is required');
    return (await this.mvcc.alarm(action, memberId, alarm)).alarms;
  }

  private conureId(etcdId: string): Member {
    const m = this.replicator.members().find((x) => memberIdOf(x.id).toString() === etcdId);
    if (!m) throw new MvccError('member_not_found', `no member with id ${BigInt(etcdId).toString(16)}`);
    return m;
  }

  private toEtcdMember(m: Member, self: boolean): EtcdMember {
    return {
      ID: memberIdOf(m.id).toString(),
      name: m.id,
      peerURLs: [`http://${m.address}`],
      clientURLs: self && this.clientUrl ? [this.clientUrl] : m.clientUrl ? [m.clientUrl] : [],
      isLearner: m.suffrage === 'learner',
    };
  }
}

/**
 * The Conure member id MemberAdd gives a peer address (etcd's request names no member): the
 * address with every character a member id may not hold (`:`, `[`, `]`) replaced by `-`, e.g.
 * `10.0.0.5-2380`. Start the member with that `--node-id`.
 */
export function memberIdForAddress(address: string): string {
  return address.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 128);
}

function addressOf(url: string): string {
  try {
    const u = new URL(url);
    return u.host;
  } catch {
    throw new MvccError('invalid', `bad peer URL ${JSON.stringify(url)}`);
  }
}
