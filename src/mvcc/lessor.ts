import type { Replicator } from '../seams/index.js';
import { NotLeaderError, type Logger } from '../util/index.js';
import { MvccError } from './errors.js';
import { encodeCommand, leaseKey, type MvccStateMachine } from './mvcc-state-machine.js';
import type { Int64, LeaseId } from './types.js';

/** Milliseconds since an arbitrary origin; must not go backwards. Injected so tests control time. */
export interface LeaseClock {
  nowMs(): number;
}

export const systemClock: LeaseClock = { nowMs: () => performance.now() };

export interface LessorOptions {
  sm: MvccStateMachine;
  replicator: Replicator;
  clock?: LeaseClock;
  log?: Logger;
  /** How often `start()`'s timer checks for expired leases. Default 500 ms (etcd: 500 ms). */
  checkIntervalMs?: number;
  /** Most revocations in flight at once, so a mass expiry does not flood the log (etcd: 1000/s). */
  revokesInFlightMax?: number;
}

/**
 * Decides when leases expire. The state machine only records leases (id, granted TTL, keys);
 * time lives here, outside it, because apply must be deterministic.
 *
 * ```
 *   grant applied ──► expiry[id] = now + TTL          keepAlive(id) ──► expiry[id] = now + TTL
 *   tick() on the leader: expiry ≤ now ──► propose leaseRevoke(id) ──► applied on every member
 *   becoming leader: expiry[id] = now + TTL for every lease   (never expire early on failover)
 * ```
 *
 * Every member tracks expiries (from applied grants), but only the leader acts and answers
 * keep-alives; a follower's expiries are reset when it becomes leader, as etcd's lessor does on
 * promotion, so a lease never expires early because the leader changed.
 * Ownership: one per member, beside the state machine. Errors: `keepAlive` and `timeToLive`
 * throw MvccError('lease_not_found'); `keepAlive` throws NotLeaderError on a follower.
 */
export class Lessor {
  private readonly expiry = new Map<LeaseId, number>();
  private readonly revoking = new Set<LeaseId>();
  private readonly clock: LeaseClock;
  private readonly detach: () => void;
  private timer: NodeJS.Timeout | undefined;
  private wasLeader = false;
  private readonly revokesInFlightMax: number;

  constructor(private readonly opts: LessorOptions) {
    this.clock = opts.clock ?? systemClock;
    this.revokesInFlightMax = opts.revokesInFlightMax ?? 64;
    const now = this.clock.nowMs();
    for (const id of opts.sm.leases()) this.expiry.set(id, now + opts.sm.lease(id)!.ttlSeconds * 1000);
    this.detach = opts.sm.addObserver({
      leaseGranted: (id, ttl) => this.expiry.set(id, this.clock.nowMs() + ttl * 1000),
      leaseRevoked: (id) => {
        this.expiry.delete(id);
        this.revoking.delete(id);
      },
    });
  }

  /** Starts the periodic expiry check (an unref'd timer). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.opts.checkIntervalMs ?? 500);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.detach();
  }

  /**
   * One check: notices leadership changes (renewing every lease on promotion) and, on the
   * leader, proposes the revocation of expired leases. Returns the ids it proposed to revoke.
   */
  tick(): LeaseId[] {
    const now = this.clock.nowMs();
    if (!this.observeLeadership(now)) return [];
    const proposed: LeaseId[] = [];
    for (const [id, at] of this.expiry) {
      if (this.revoking.size >= this.revokesInFlightMax) break;
      if (at > now || this.revoking.has(id)) continue;
      this.revoking.add(id);
      proposed.push(id);
      this.opts.replicator.propose(encodeCommand({ t: 'leaseRevoke', id })).then(
        () => this.revoking.delete(id),
        (err: unknown) => {
          this.revoking.delete(id);
          this.opts.log?.warn({ err, lease: String(id) }, 'lease revoke failed; will retry');
        },
      );
    }
    return proposed;
  }

  /**
   * Renews lease `id` (an int64 from the wire: a bigint, or a number) to its full TTL; returns
   * the TTL in seconds. Leader only. An id no lease can have (≤ 0, beyond int64) is not found.
   */
  keepAlive(leaseId: Int64): number {
    const id = leaseKey(leaseId);
    const now = this.clock.nowMs();
    if (!this.observeLeadership(now)) {
      const s = this.opts.replicator.status();
      throw new NotLeaderError(s.leader || undefined, s.leaderHttp || undefined);
    }
    const lease = this.opts.sm.lease(id);
    const at = this.expiry.get(id);
    if (!lease || at === undefined || at <= now) throw new MvccError('lease_not_found', `lease ${leaseId} not found`);
    this.expiry.set(id, now + lease.ttlSeconds * 1000);
    return lease.ttlSeconds;
  }

  /** Remaining and granted TTL in seconds (remaining rounded up, ≥ 0), and the attached keys. */
  timeToLive(leaseId: Int64): { remainingSeconds: number; grantedSeconds: number; keys: Uint8Array[] } {
    this.observeLeadership(this.clock.nowMs());
    const id = leaseKey(leaseId);
    const lease = this.opts.sm.lease(id);
    const at = this.expiry.get(id);
    if (!lease || at === undefined) throw new MvccError('lease_not_found', `lease ${leaseId} not found`);
    const remainingSeconds = Math.max(0, Math.ceil((at - this.clock.nowMs()) / 1000));
    return { remainingSeconds, grantedSeconds: lease.ttlSeconds, keys: lease.keys };
  }

  /**
   * Notices a leadership change now rather than at the next tick: a member that has just become
   * leader renews every lease before it answers anything, or a keep-alive arriving before its
   * first tick would be judged against the expiries it kept as a follower.
   */
  private observeLeadership(now: number): boolean {
    const leader = this.opts.replicator.status().isLeader;
    if (leader && !this.wasLeader) this.promote(now);
    this.wasLeader = leader;
    return leader;
  }

  private promote(now: number): void {
    for (const id of this.expiry.keys()) {
      const lease = this.opts.sm.lease(id);
      if (lease) this.expiry.set(id, now + lease.ttlSeconds * 1000);
    }
  }
}
