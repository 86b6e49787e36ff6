/**
 * LeaderElection: one leader among the platform's replicas, by a lease plus a create-if-absent
 * txn on one key, and fencing so a deposed leader can never write.
 *
 * ```
 *  campaign:  txn  create_revision(key) == 0  →  put key = instanceId (our lease)
 *             ├─ won:  leader; term = the key's create revision; keep the lease alive
 *             └─ lost: standby; watch the key and poll every checkIntervalMs; campaign again
 *                      as soon as the key is gone (its leader resigned or its lease lapsed)
 *
 *  leader ──► lost when:  the LeaseKeeper reports `lost` (answered TTL ≤ 0, or no keep-alive
 *                         within the TTL — e.g. the process was paused) · the key is deleted or
 *                         re-created (watch, or the periodic check) · a fenced txn is refused
 *             then at once: log leadership_lost, abort the term's AbortSignal, emit `lost`,
 *             revoke our lease (best effort), and campaign again as a standby.
 *
 *  fence()    = [ create_revision(key) == term ]     fencedTxn(ops) = txn(fence ∧ compares → ops)
 * ```
 *
 * The fence is what makes leadership safe: the key's create revision changes whenever anyone
 * else acquires, so a txn guarded by it fails in the store, even when the deposed leader has
 * not noticed yet (FencedError, code `permission_denied`).
 *
 * Logs: leadership_acquired {instance_id}, leadership_lost {instance_id, reason}.
 * Events: `acquired` (term: number), `lost` (reason: string).
 */
import { EventEmitter } from 'node:events';
import { compare, op, type Compare, type EtcdClient, type LeaseKeeper, type TxnOp, type TxnResult, type Watcher } from '../../client/index.js';
import { asConureError, ConureError, InvalidArgumentError, createLogger, type Logger } from '../../util/index.js';

/** The caller is not (or no longer) the leader: its fenced write was refused. */
export class FencedError extends ConureError {
  constructor(message: string) { super('permission_denied', message); }
}

export interface LeaderElectionOptions {
  client: EtcdClient;
  /** The leader key, e.g. PlatformStore.keys.leader(). */
  key: string;
  /** This replica's name (stored as the key's value). */
  instanceId: string;
  /** Lease TTL, seconds (LEADER_LEASE_SECONDS, default 30). */
  ttlSeconds?: number;
  /** How often a standby polls the key and a leader re-checks it, ms (default and at most 5000). */
  checkIntervalMs?: number;
  log?: Logger;
}

export class LeaderElection extends EventEmitter {
  readonly key: string;
  readonly instanceId: string;
  readonly ttlSeconds: number;
  readonly checkIntervalMs: number;
  private readonly client: EtcdClient;
  private readonly log: Logger;
  private running = false;
  private keeper: LeaseKeeper | undefined;
  private term = 0;
  private abort: AbortController | undefined;
  private watcher: Watcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private campaigning: Promise<void> | undefined;
  private campaignAgain = false;

  constructor(opts: LeaderElectionOptions) {
    super();
    if (!opts.key) throw new InvalidArgumentError('leader key must not be empty');
    if (!opts.instanceId) throw new InvalidArgumentError('instanceId must not be empty');
    this.client = opts.client;
    this.key = opts.key;
    this.instanceId = opts.instanceId;
    this.ttlSeconds = opts.ttlSeconds ?? 30;
    this.checkIntervalMs = Math.min(opts.checkIntervalMs ?? 5000, 5000);
    this.log = opts.log ?? createLogger('election', { instance_id: this.instanceId });
  }

  /** Starts campaigning (returns at once; watch `acquired` or use waitForLeadership). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.watcher = this.client.watch(this.key, {}, (evs) => {
      for (const e of evs) {
        if (this.leading() && (e.type === 'delete' || e.kv.createRevision !== this.term)) this.lose('the leader key changed');
      }
      if (!this.isLeader() && evs.some((e) => e.type === 'delete')) this.kick();
    });
    this.timer = setInterval(() => this.check(), this.checkIntervalMs);
    this.kick();
  }

  /** Resigns (deletes the key if still ours, revokes the lease) and stops campaigning. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.timer) clearInterval(this.timer);
    this.watcher?.close();
    await this.campaigning;
    if (this.leading()) {
      try { await this.client.runTxn({ compare: this.fence(), success: [op.delete(this.key)] }); } catch { /* the lease will lapse */ }
      this.lose('resigned');
    }
    const k = this.keeper;
    this.keeper = undefined;
    await k?.stop(true);
  }

  /**
   * True while this replica holds the key and its lease cannot have expired yet (so a paused
   * process that wakes past its TTL is not leader even before its timers run).
   */
  isLeader(): boolean { return this.leading() && this.keeper?.isAlive() === true; }

  /** In a term that has not been ended yet (lose() ends it). */
  private leading(): boolean { return this.term > 0 && this.abort !== undefined && !this.abort.signal.aborted; }

  /** The current term's signal (aborted when leadership is lost), or undefined when not leader. */
  leaderSignal(): AbortSignal | undefined { return this.isLeader() ? this.abort!.signal : undefined; }

  /** Resolves with the term's signal once leader; rejects with `closed` when stopped first. */
  waitForLeadership(timeoutMs?: number): Promise<AbortSignal> {
    const s = this.leaderSignal();
    if (s) return Promise.resolve(s);
    return new Promise((resolve, reject) => {
      const t = timeoutMs === undefined ? undefined : setTimeout(() => { this.off('acquired', on); reject(new ConureError('timeout', `not leader within ${timeoutMs} ms`)); }, timeoutMs);
      const on = () => { if (t) clearTimeout(t); resolve(this.abort!.signal); };
      this.once('acquired', on);
    });
  }

  /** The instance id in the leader key (anyone's), or undefined. */
  async currentLeader(): Promise<string | undefined> {
    return (await this.client.get(this.key))?.value.toString();
  }

  /** The compares that hold only while we are leader. Throws FencedError when we are not. */
  fence(): Compare[] {
    if (this.leading() && !this.isLeader()) this.lose('the lease may have expired');
    if (!this.isLeader()) throw new FencedError(`${this.instanceId} is not the leader`);
    return [compare.createRevision(this.key, '==', this.term)];
  }

  /**
   * Runs `ops` only if we are still leader (and `compares` hold). Throws FencedError when the
   * store refuses the fence (and steps down); a failed caller compare returns `succeeded:
   * false` with the `failure` ops' answers, as a plain txn does.
   */
  async fencedTxn(ops: TxnOp[], opts: { compares?: Compare[]; failure?: TxnOp[] } = {}): Promise<TxnResult> {
    const fence = this.fence();
    const failure = [...(opts.failure ?? []), op.get(this.key)];
    const r = await this.client.runTxn({ compare: [...fence, ...(opts.compares ?? [])], success: ops, failure });
    if (r.succeeded) return r;
    const mine = r.responses[r.responses.length - 1];
    if (mine?.type !== 'range' || mine.kvs[0]?.createRevision !== this.term) {
      this.lose('a fenced write was refused');
      throw new FencedError(`${this.instanceId} is no longer the leader: its fenced write was refused`);
    }
    return { ...r, responses: r.responses.slice(0, -1) };
  }

  private check(): void {
    if (!this.running) return;
    if (this.leading() && !this.isLeader()) this.lose('no successful keep-alive within the TTL');
    if (!this.isLeader()) { this.kick(); return; }
    const term = this.term;
    this.client.get(this.key).then((kv) => {
      if (this.term === term && this.leading() && (!kv || kv.createRevision !== term)) this.lose('the leader key changed');
    }, () => { /* store unreachable: the lease keeper decides */ });
  }

  private kick(): void {
    if (!this.running || this.isLeader()) return;
    if (this.campaigning) { this.campaignAgain = true; return; }
    this.campaigning = (async () => {
      do {
        this.campaignAgain = false;
        try { await this.campaignOnce(); } catch (err) {
          this.log.warn({ instance_id: this.instanceId, err: asConureError(err).message }, 'leadership_campaign_failed');
        }
      } while (this.campaignAgain && this.running && !this.isLeader());
    })().finally(() => { this.campaigning = undefined; });
  }

  private async campaignOnce(): Promise<void> {
    if (!this.running || this.isLeader()) return;
    if (!this.keeper || !this.keeper.isAlive()) {
      const old = this.keeper;
      this.keeper = undefined;
      await old?.stop();
      const keeper = await this.client.grantAndKeep(this.ttlSeconds);
      keeper.once('lost', (reason: string) => {
        if (this.keeper === keeper) this.keeper = undefined;
        this.lose(`the lease keep-alive failed: ${reason}`);
      });
      this.keeper = keeper;
      if (!this.running) { await keeper.stop(true); return; }
    }
    const lease = this.keeper.id;
    const r = await this.client.runTxn({
      compare: [compare.absent(this.key)],
      success: [op.put(this.key, this.instanceId, { lease })],
      failure: [op.get(this.key)],
    });
    if (!r.succeeded || !this.running || !this.keeper?.isAlive()) return;
    this.term = r.revision;
    this.abort = new AbortController();
    this.log.info({ instance_id: this.instanceId, term: this.term, lease_id: lease }, 'leadership_acquired');
    this.emit('acquired', this.term);
  }

  private lose(reason: string): void {
    if (!this.leading()) return;
    const term = this.term;
    this.abort!.abort(new FencedError(`leadership lost: ${reason}`));
    this.term = 0;
    this.log.warn({ instance_id: this.instanceId, term, reason }, 'leadership_lost');
    this.emit('lost', reason);
    // Our lease may still hold the key (e.g. the key check failed): give it up so others can go.
    const k = this.keeper;
    this.keeper = undefined;
    void k?.stop(true);
    if (this.running) setTimeout(() => this.kick(), Math.min(1000, this.checkIntervalMs));
  }
}
