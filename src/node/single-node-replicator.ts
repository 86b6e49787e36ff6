import { ClosedError, ConureError, InvalidArgumentError, UnavailableError } from '../util/index.js';
import type { Member, NodeStatus, RaftStats, Replicator, StateMachine, Suffrage } from '../seams/index.js';

export interface SingleNodeReplicatorOptions {
  id: string;
  /** Advertised raft address (host:port) reported as this member's address. */
  raftAddress: string;
  /** Advertised HTTP address (host:port). */
  httpAddress: string;
  stateMachine: StateMachine;
  /** Proposals waiting to be applied before new ones are refused (UnavailableError); default 16384. */
  pendingProposalsMax?: number;
}

/** Proposals applied in one storage transaction at most. */
const BATCH_PROPOSALS_MAX = 4096;

interface Pending { command: Uint8Array; resolve: (v: unknown) => void; reject: (e: unknown) => void }

/**
 * A Replicator for a standalone member: the log is the state store itself. Proposals queue
 * up; once per event-loop turn the queue is applied in order at `appliedIndex() + 1, + 2, …`
 * inside one storage transaction (`StateMachine.batch`), and every proposal of the batch
 * resolves after one `stateMachine.sync()`, i.e. after one fsync (group commit).
 *
 * Membership changes need the raft-replicated member and are refused with code `unsupported`.
 */
export class SingleNodeReplicator implements Replicator {
  private closed = false;
  private readonly startedAtMs = Date.now();
  private queue: Pending[] = [];
  private flushing = false;

  constructor(private readonly opts: SingleNodeReplicatorOptions) {}

  propose(command: Uint8Array): Promise<unknown> {
    if (this.closed) return Promise.reject(new ClosedError('replicator'));
    if (this.queue.length >= (this.opts.pendingProposalsMax ?? 16384)) {
      return Promise.reject(new UnavailableError('too many proposals in flight; retry shortly', 1, { reason: 'too_many_requests' }));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ command, resolve, reject });
      if (!this.flushing && this.queue.length === 1) setImmediate(() => void this.flush());
    });
  }

  /** Applies queued proposals in batches, one transaction and one fsync each. */
  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    const sm = this.opts.stateMachine;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, BATCH_PROPOSALS_MAX);
        let results: unknown[];
        try {
          const applyAll = () => batch.map((p) => sm.apply(sm.appliedIndex() + 1, p.command));
          results = sm.batch ? sm.batch(applyAll) : applyAll();
          await sm.sync();
        } catch (err) {
          for (const p of batch) p.reject(err);
          continue;
        }
        batch.forEach((p, i) => p.resolve(results[i]));
      }
    } finally {
      this.flushing = false;
    }
  }

  async readBarrier(): Promise<void> {
    if (this.closed) throw new ClosedError('replicator');
  }

  status(): NodeStatus {
    return {
      id: this.opts.id,
      isLeader: !this.closed,
      leader: this.closed ? '' : this.opts.raftAddress,
      leaderHttp: this.closed ? '' : this.opts.httpAddress,
      ready: !this.closed,
    };
  }

  members(): Member[] {
    return [{ id: this.opts.id, address: this.opts.raftAddress, httpAddress: this.opts.httpAddress, suffrage: 'voter' }];
  }

  stats(): RaftStats {
    const applied = this.opts.stateMachine.appliedIndex();
    return {
      state: this.closed ? 'shutdown' : 'leader',
      term: 1,
      commit_index: applied,
      applied_index: applied,
      last_log_index: applied,
      last_log_term: 1,
      num_peers: 0,
      last_contact_ms: 0,
      mode: 'standalone',
      uptime_ms: Date.now() - this.startedAtMs,
    };
  }

  async addMember(m: { id: string; address: string; suffrage: Suffrage }): Promise<void> {
    if (m.id === this.opts.id && m.address === this.opts.raftAddress) return; // idempotent self-join
    throw unsupported('adding members');
  }

  async removeMember(id: string): Promise<void> {
    if (id === this.opts.id) throw new InvalidArgumentError('cannot remove the only member of a cluster');
    throw unsupported('removing members');
  }

  async promoteMember(): Promise<void> { throw unsupported('promoting members'); }

  async transferLeadership(toId?: string): Promise<void> {
    if (toId === undefined || toId === this.opts.id) return;
    throw new InvalidArgumentError(`no member ${JSON.stringify(toId)} to transfer leadership to`);
  }

  async close(): Promise<void> {
    this.closed = true;
    while (this.flushing) await new Promise((r) => setImmediate(r));
    for (const p of this.queue.splice(0)) p.reject(new ClosedError('replicator'));
  }
}

function unsupported(what: string): ConureError {
  return new ConureError('unsupported', `${what} needs the raft-replicated member; this node runs standalone`);
}
