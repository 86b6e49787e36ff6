import { randomBytes } from 'node:crypto';
import type { Replicator } from '../seams/index.js';
import type { StateStore } from '../storage/index.js';
import { ConureError, NotLeaderError } from '../util/index.js';
import { MvccError } from './errors.js';
import type { Lessor } from './lessor.js';
import { LEASE_TTL_MAX_SECONDS, encodeCommand, leaseKey, type MvccCommand, type MvccStateMachine } from './mvcc-state-machine.js';
import type {
  AlarmKind, AlarmResult, CompactResult, DeleteRangeRequest, DeleteRangeResult, Int64, LeaseGrantResult, LeaseId, LeaseRevokeResult,
  KeyValue, PutRequest, PutResult, RangeRequest, RangeResult, RequestOp, TxnRequest, TxnResult,
} from './types.js';

/** Limits of the etcd-compatible API (etcd's defaults). */
export interface MvccLimits {
  /** Largest encoded write command (etcd `--max-request-bytes`, 1.5 MiB). */
  requestBytesMax: number;
  /** Backend size above which the NOSPACE alarm is raised (etcd `--quota-backend-bytes`, 2 GiB). */
  quotaBytes: number;
  /**
   * Largest encoded Range response (conured `--range-response-bytes-max`). etcd 3.4 has no such
   * limit below gRPC's send maximum (math.MaxInt32); past it grpc-go fails the call with
   * ResourceExhausted "grpc: trying to send message larger than max (N vs. M)", and so does
   * Conure past this smaller, memory-safe default of 256 MiB.
   */
  rangeResponseBytesMax: number;
  /**
   * Range response bytes encoded and not yet sent, over all calls (conured
   * `--range-bytes-in-flight-max`, default 512 MiB). A Range arriving above it waits until enough
   * has been sent; one Range always runs when nothing else is in flight.
   */
  rangeBytesInFlightMax: number;
}

/** Admission around a read (see `rangeEach`): `enter` resolves when it may start; `leave` ends it. */
export interface RangeGate {
  enter(): Promise<void>;
  leave(): void;
}

export const DEFAULT_MVCC_LIMITS: MvccLimits = {
  requestBytesMax: 1.5 * 1024 * 1024,
  quotaBytes: 2 * 1024 ** 3,
  rangeResponseBytesMax: 256 * 1024 * 1024,
  rangeBytesInFlightMax: 512 * 1024 * 1024,
};

export interface MvccServiceOptions {
  replicator: Replicator;
  sm: MvccStateMachine;
  lessor: Lessor;
  /** The store under `sm`, for the quota check. */
  store: Pick<StateStore, 'sizeBytes'>;
  /** This member's etcd id (decimal uint64 string), recorded on alarms it raises. */
  memberId: string;
  limits?: Partial<MvccLimits>;
  /**
   * Renews lease `id` on the leader when this member is not the leader (raft members forward
   * keep-alives, as etcd does); resolves with the TTL in seconds. Without it a follower answers
   * keep-alives with NotLeaderError.
   */
  forwardKeepAlive?: (id: LeaseId) => Promise<number>;
}

/**
 * The etcd KV and Lease operations over a Replicator: the one place where requests are
 * checked against limits and the quota, turned into commands, proposed, and their results
 * unwrapped. Transport handlers (gRPC, JSON gateway, seed /kv) call exactly one method each.
 *
 * Reads are linearizable (a `readBarrier()` first) unless `serializable` is set. Read-only
 * Txns are served locally after the barrier, without a proposal, as etcd does.
 * Errors: MvccError (reason per etcd error), TooLarge via `request_too_large`, and whatever the
 * Replicator throws (NotLeaderError, UnavailableError, ClosedError).
 */
export class MvccService {
  readonly limits: MvccLimits;

  constructor(private readonly opts: MvccServiceOptions) {
    this.limits = { ...DEFAULT_MVCC_LIMITS, ...opts.limits };
  }

  get sm(): MvccStateMachine { return this.opts.sm; }
  get replicator(): Replicator { return this.opts.replicator; }
  get lessor(): Lessor { return this.opts.lessor; }

  async range(req: RangeRequest): Promise<RangeResult> {
    if (!req.key || req.key.length === 0) throw new MvccError('empty_key', 'key is not provided');
    if (!req.serializable) await this.opts.replicator.readBarrier();
    return this.opts.sm.range(req);
  }

  /** `range` streamed to `visit` (see MvccStateMachine.rangeEach), for encoding large results. */
  /**
   * `gate` (optional) is entered after the read barrier and left once the read is done, so a
   * transport can bound how many bytes of responses are built at once (api/etcd RangeBudget).
   */
  async rangeEach(req: RangeRequest, visit: (kv: KeyValue) => void, gate?: RangeGate): Promise<Omit<RangeResult, 'kvs'>> {
    if (!req.key || req.key.length === 0) throw new MvccError('empty_key', 'key is not provided');
    if (!req.serializable) await this.opts.replicator.readBarrier();
    if (!gate) return this.opts.sm.rangeEach(req, visit);
    await gate.enter();
    try {
      return this.opts.sm.rangeEach(req, visit);
    } finally {
      gate.leave();
    }
  }

  async put(req: PutRequest): Promise<PutResult> {
    return (await this.propose({ t: 'put', r: req }, true)) as PutResult;
  }

  async deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResult> {
    return (await this.propose({ t: 'deleteRange', r: req })) as DeleteRangeResult;
  }

  async txn(req: TxnRequest): Promise<TxnResult> {
    if (isReadOnly(req)) {
      if (!allSerializable(req)) await this.opts.replicator.readBarrier();
      return this.opts.sm.txnReadOnly(req);
    }
    return (await this.propose({ t: 'txn', r: req }, hasPut(req))) as TxnResult;
  }

  /**
   * etcd's Compact: at or below the compacted revision (0 and negatives included) is
   * `compacted`, above the current revision `future_revision` (both decided at apply). A revision
   * beyond 2^53 can never be reached, so it is refused here, compared as a bigint, before any
   * conversion.
   */
  async compact(revision: Int64): Promise<CompactResult> {
    const asked = BigInt(revision);
    if (asked > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new MvccError('future_revision', `cannot compact at ${asked}: the current revision is ${this.opts.sm.currentRevision()}`);
    }
    const rev = asked < 0n ? 0 : Number(asked);
    return (await this.propose({ t: 'compact', rev })) as CompactResult;
  }

  /**
   * Grants a lease; `id` 0 lets the server choose a random positive id below 2^52. etcd's limits,
   * checked as bigints before anything is converted: a TTL above 9,000,000,000 s is
   * `lease_ttl_too_large` (etcd: OutOfRange "too large lease TTL"); a TTL below the minimum (or
   * negative) is raised to it. A client-chosen id may be any positive int64, as in etcd (whose
   * own ids are mostly above 2^53, so a migration keeps them); a negative one is `invalid`.
   */
  async leaseGrant(ttlSeconds: Int64, id: Int64): Promise<LeaseGrantResult> {
    const ttlAsked = BigInt(ttlSeconds);
    if (ttlAsked > BigInt(LEASE_TTL_MAX_SECONDS)) throw new MvccError('lease_ttl_too_large', `lease TTL ${ttlAsked} exceeds ${LEASE_TTL_MAX_SECONDS}`);
    const ttl = ttlAsked < 0n ? 0 : Number(ttlAsked);
    const idAsked = BigInt(id);
    if (idAsked < 0n || idAsked > 2n ** 63n - 1n) {
      throw new MvccError('invalid', `lease id ${idAsked} must be a positive int64`);
    }
    for (let attempt = 0; ; attempt++) {
      const chosen = idAsked !== 0n ? leaseKey(idAsked) : randomLeaseId();
      try {
        return (await this.propose({ t: 'leaseGrant', id: chosen, ttl }, true)) as LeaseGrantResult;
      } catch (err) {
        // A random id that collided is retried; a client-chosen one is the client's problem.
        if (idAsked !== 0n || attempt >= 3 || !(err instanceof MvccError) || err.reason !== 'lease_exists') throw err;
      }
    }
  }

  /** Revokes a lease; an id no granted lease can have (≤ 0, beyond int64) is `lease_not_found` at once. */
  async leaseRevoke(id: Int64): Promise<LeaseRevokeResult> {
    const n = leaseKey(id);
    if (!(n > 0)) throw new MvccError('lease_not_found', `lease ${id} not found`);
    return (await this.propose({ t: 'leaseRevoke', id: n })) as LeaseRevokeResult;
  }

  /** Renews a lease (on the leader, or forwarded to it); resolves with its TTL in seconds. */
  async leaseKeepAlive(id: Int64): Promise<number> {
    // A leader cut off from the others may not know it yet, while a new leader already counts
    // down from its election: renewing here would let the lease expire early there. Confirm
    // leadership with a quorum round first (etcd's ensureLeadership), then renew.
    if (this.opts.replicator.status().isLeader) await this.opts.replicator.readBarrier();
    try {
      return this.opts.lessor.keepAlive(id);
    } catch (err) {
      if (err instanceof NotLeaderError && this.opts.forwardKeepAlive) {
        const n = leaseKey(id);
        if (!(n > 0)) throw new MvccError('lease_not_found', `lease ${id} not found`);
        return this.opts.forwardKeepAlive(n);
      }
      throw err;
    }
  }

  async leaseTimeToLive(id: Int64): Promise<{ remainingSeconds: number; grantedSeconds: number; keys: Uint8Array[] }> {
    await this.opts.replicator.readBarrier();
    return this.opts.lessor.timeToLive(id);
  }

  async leaseLeases(): Promise<LeaseId[]> {
    await this.opts.replicator.readBarrier();
    return this.opts.sm.leases();
  }

  async alarm(action: 'activate' | 'deactivate', memberId: string, alarm: AlarmKind): Promise<AlarmResult> {
    return (await this.propose({ t: 'alarm', action, memberId, alarm })) as AlarmResult;
  }

  /**
   * Proposes `cmd` and unwraps the state machine's result (an MvccError value is thrown).
   * `addsData`: the command may grow the store, so the quota applies.
   */
  private async propose(cmd: MvccCommand, addsData = false): Promise<unknown> {
    const bytes = encodeCommand(cmd);
    if (bytes.length > this.limits.requestBytesMax) {
      throw new MvccError('request_too_large', `request is ${bytes.length} bytes; the limit is ${this.limits.requestBytesMax}`);
    }
    if (addsData) await this.checkQuota(bytes.length);
    const result = await this.opts.replicator.propose(bytes);
    if (result instanceof ConureError) throw result;
    if (result === undefined) throw new ConureError('internal', 'the state machine returned no result');
    return result;
  }

  /**
   * etcd's quota: once the backend passes `quotaBytes`, the NOSPACE alarm is raised (replicated,
   * so every member refuses) and writes that add data fail until an operator disarms it after
   * compacting. Deletes, compaction and revokes stay allowed so space can be reclaimed.
   */
  private async checkQuota(costBytes: number): Promise<void> {
    if (this.opts.sm.alarms().some((a) => a.alarm === 'nospace')) throw new MvccError('no_space', 'database space exceeded');
    if (this.opts.store.sizeBytes() + costBytes <= this.limits.quotaBytes) return;
    await this.alarm('activate', this.opts.memberId, 'nospace');
    throw new MvccError('no_space', 'database space exceeded');
  }
}

function randomLeaseId(): number {
  for (;;) {
    const b = randomBytes(7);
    const n = (b.readUIntBE(0, 6) * 16 + (b[6]! & 0x0f)); // 52 random bits
    if (n > 0) return n;
  }
}

function walkOps(req: TxnRequest, visit: (op: RequestOp) => boolean): boolean {
  for (const op of [...req.success, ...req.failure]) {
    if ('txn' in op) {
      if (!walkOps(op.txn, visit)) return false;
    } else if (!visit(op)) {
      return false;
    }
  }
  return true;
}

function isReadOnly(req: TxnRequest): boolean {
  return walkOps(req, (op) => 'range' in op);
}

function allSerializable(req: TxnRequest): boolean {
  return walkOps(req, (op) => 'range' in op && !!op.range.serializable) && req.compare.length === 0;
}

function hasPut(req: TxnRequest): boolean {
  return !walkOps(req, (op) => !('put' in op));
}
