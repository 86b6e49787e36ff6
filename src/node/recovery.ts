/**
 * Quorum-loss recovery (`conured --force-new-cluster`, `conurectl recover --data-dir`).
 *
 * A member whose peers are gone for good rewrites its own raft log into the first state of a
 * new cluster in which it is the sole voter:
 *
 * ```
 *  log:  … entries it has (committed or not) … │ [addVoter self]? [remove p1] [remove p2] …
 *                                              └─ appended at term T = max(hard term, last term) + 1
 *  hard state: term T, vote self, commit = the last appended index
 *  registry: self only; cluster id: a new one; marker: { cluster, index }
 * ```
 *
 * Every entry the member has is kept and committed: an entry acknowledged to a client was on a
 * quorum, and the member with the longest log (highest last term, then index) has them all, even
 * those it had not yet learnt were committed (etcd's `--force-new-cluster` drops those). Conf
 * changes take effect when appended (src/raft), so raft starts with the one-voter configuration
 * and elects this member at once; the driver applies the kept entries and the removals.
 *
 * The new cluster id keeps the lost members out: a member of the old cluster that comes back
 * with its old disk is refused by every member of the new one (peer frames and `/join`).
 * The rewrite is durable before it returns. It runs once per data directory: the marker makes a
 * later start with the flag a no-op (the flag may stay in a StatefulSet or a unit file).
 */
import { pack, unpack } from 'msgpackr';
import { randomBytes } from 'node:crypto';
import { applyConfChange, decodeConfChange, encodeConfChange, type ConfChange, type Entry, type Membership } from '../raft/index.js';
import type { LmdbRaftLog } from '../storage/index.js';
import { InvalidArgumentError } from '../util/index.js';
import { decodeEntry, LmdbRaftStorage } from './lmdb-raft-storage.js';

/** Meta keys beside the raft log. */
export const CLUSTER_KEY = 'cluster';
const FORCED_KEY = 'forced-new-cluster';
export const REGISTRY_KEY = 'members';

/** A cluster id: 32 lowercase hex digits (16 random bytes). */
export const CLUSTER_ID = /^[0-9a-f]{32}$/;

export function newClusterId(): string { return randomBytes(16).toString('hex'); }

export function readClusterId(log: LmdbRaftLog): string | undefined {
  const v = log.getMeta(CLUSTER_KEY);
  return v ? new TextDecoder().decode(v) : undefined;
}

export function writeClusterId(log: LmdbRaftLog, id: string): void {
  if (!CLUSTER_ID.test(id)) throw new InvalidArgumentError(`not a cluster id: ${JSON.stringify(id)}`);
  log.putMeta(CLUSTER_KEY, new TextEncoder().encode(id));
}

/** What a recovery would do (plan) or did. */
export interface RecoveryPlan {
  /** The member that becomes the sole voter. */
  id: string;
  /** Last log index and term before the rewrite. */
  lastIndex: number;
  lastTerm: number;
  /** Commit index it had persisted: entries after it are kept and committed too. */
  commit: number;
  /** The configuration in its log, and the members the rewrite removes from it. */
  membership: Membership;
  removed: string[];
  /** True when the member is a learner there and is made a voter first. */
  promoted: boolean;
  /** The term of the appended entries and the index of the last one. */
  term: number;
  index: number;
}

/** A recovery already applied to this data directory (the marker). */
export interface ForcedMarker { cluster: string; index: number; at: string }

export function forcedMarker(log: LmdbRaftLog): ForcedMarker | undefined {
  const v = log.getMeta(FORCED_KEY);
  return v ? (unpack(v) as ForcedMarker) : undefined;
}

/**
 * Works out the rewrite without changing anything. Throws InvalidArgumentError when this data
 * directory cannot seed a new cluster (no log; the member is not in its own configuration or is
 * an arbiter there, holding no state).
 */
export function planRecovery(log: LmdbRaftLog, id: string): RecoveryPlan {
  const storage = new LmdbRaftStorage(log);
  const { hardState } = storage.initialState();
  const lastIndex = log.lastIndex();
  if (lastIndex === 0 && log.hardState() === undefined) throw new InvalidArgumentError('this data directory holds no raft log: there is nothing to recover from (restore a backup instead: conurectl snapshot restore)');
  const membership = membershipAtEnd(log, storage);
  const own = membership.voters.includes(id) ? 'voter' : membership.learners.includes(id) ? 'learner' : membership.arbiters.includes(id) ? 'arbiter' : undefined;
  if (own === undefined) throw new InvalidArgumentError(`${id} is not a member of the configuration in this data directory (voters ${membership.voters.join(', ') || 'none'}): check --node-id`);
  if (own === 'arbiter') throw new InvalidArgumentError(`${id} is an arbiter: it holds no state to seed a new cluster with; recover from a voter, or restore a backup (conurectl snapshot restore)`);
  const lastTerm = storage.term(lastIndex);
  const removed = [...membership.voters, ...membership.learners, ...membership.arbiters].filter((m) => m !== id).sort();
  const promoted = own === 'learner';
  const term = Math.max(hardState.term, lastTerm) + 1;
  return { id, lastIndex, lastTerm, commit: hardState.commit, membership, removed, promoted, term, index: lastIndex + removed.length + (promoted ? 1 : 0) };
}

/**
 * Rewrites the log as the module comment says; durable on resolve. `self` is this member's
 * advertised addresses (the only registry entry afterwards; offline, the ones saved in the data
 * directory are kept, and a start replaces them with its flags'). Returns the plan it carried
 * out and the new cluster id.
 */
export async function forceNewCluster(log: LmdbRaftLog, member: { id: string; raft?: string; http?: string }): Promise<RecoveryPlan & { cluster: string }> {
  const plan = planRecovery(log, member.id);
  const saved = log.getMeta(REGISTRY_KEY);
  const known = saved ? (unpack(saved) as Record<string, { raft?: string; http?: string }>)[member.id] : undefined;
  const self = { id: member.id, raft: member.raft ?? known?.raft ?? '', http: member.http ?? known?.http ?? '' };
  const changes: ConfChange[] = [
    ...(plan.promoted ? [{ type: 'addVoter' as const, nodeId: self.id, context: pack({ raft: self.raft, http: self.http, intent: 'voter' }) }] : []),
    ...plan.removed.map((nodeId) => ({ type: 'remove' as const, nodeId, context: new Uint8Array(0) })),
  ];
  // Each change must be valid on the configuration before it (the same rules raft applies).
  let m = plan.membership;
  for (const cc of changes) m = applyConfChange(m, cc);
  const entries: Entry[] = changes.map((cc, i) => ({ index: plan.lastIndex + 1 + i, term: plan.term, type: 'conf', data: encodeConfChange(cc) }));
  const cluster = newClusterId();
  await new LmdbRaftStorage(log).persist({ term: plan.term, vote: self.id, commit: plan.index }, entries, undefined);
  log.putMeta(REGISTRY_KEY, pack({ [self.id]: { raft: self.raft, http: self.http, intent: 'voter' } }));
  writeClusterId(log, cluster);
  log.putMeta(FORCED_KEY, pack({ cluster, index: plan.index, at: new Date().toISOString() } satisfies ForcedMarker));
  await log.sync();
  return { ...plan, cluster };
}

/** The configuration after every conf entry in the log (as raft rebuilds it on start). */
function membershipAtEnd(log: LmdbRaftLog, storage: LmdbRaftStorage): Membership {
  let m = storage.snapshot().meta.membership;
  const hi = log.lastIndex() + 1;
  for (let lo = log.firstIndex(); lo < hi;) {
    const page = log.entries(lo, hi, 4 << 20).map(decodeEntry);
    if (page.length === 0) break;
    for (const e of page) {
      if (e.type !== 'conf') continue;
      try { m = applyConfChange(m, decodeConfChange(e.data)); } catch { /* raft keeps the configuration for an invalid change */ }
    }
    lo += page.length;
  }
  return m;
}
