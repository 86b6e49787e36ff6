/**
 * Reconciler: desired (the database records) vs observed (the driver) → `repair` operations.
 * Runs on the leader only.
 *
 * ```
 *  leadership_acquired ──► pass now; then every RECONCILE_INTERVAL s and on any databases/ change
 *                          (watch, debounced; at most one pass per minPassGapMs)
 *  pass: for each database (16 at a time) that should run (not halted, not deleting, no operation in flight):
 *          driver.observe → fewer processes running than expected, or none at all,
 *          or a spec generation not converged                    → submit repair (apply, wait-ready)
 *        the submit carries election.fence() as extra compares: a deposed leader's submit fails
 *        in the store, whatever it believes.
 *  leadership_lost ──► stop at once (the term's AbortSignal ends the pass between databases)
 * ```
 *
 * Each pass also deletes finished operations older than `operationRetentionMs` together with the
 * Idempotency-Keys that point to them (one fenced txn each), so the store does not grow forever.
 *
 * A database repaired less than `repairBackoffMs` ago is left alone, so an instance that cannot
 * start is not resubmitted in a loop. Instances the driver has but the store lacks are logged
 * (`orphan_instance`), never removed automatically.
 */
import { compare, op, type Watcher } from '../../client/index.js';
import { asConureError, createLogger, type Logger } from '../../util/index.js';
import { stepsFor } from '../engines/index.js';
import type { LeaderElection } from '../election/index.js';
import type { OperationService } from '../operations/index.js';
import type { IdempotencyRecord, PlatformStore } from '../store/index.js';
import type { DatabaseRecord, Driver, OperationRecord } from '../types.js';

export interface ReconcilerOptions {
  store: PlatformStore;
  driver: Driver;
  operations: OperationService;
  election: LeaderElection;
  /** Seconds between periodic passes (RECONCILE_INTERVAL, default 300). */
  intervalSeconds?: number;
  /** Minimum gap between two passes, ms (default 2000). */
  minPassGapMs?: number;
  /** No new repair of a database within this long of the last one, ms (default 60 s). */
  repairBackoffMs?: number;
  /** Databases examined (and repairs submitted) at once in a pass (default 16). */
  concurrency?: number;
  /** Finished operations (and their Idempotency-Keys) older than this are deleted, ms (default 7 days). */
  operationRetentionMs?: number;
  log?: Logger;
}

const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

export interface PassResult { databases: number; repairs: string[]; durationMs: number }

export class Reconciler {
  private readonly store: PlatformStore;
  private readonly driver: Driver;
  private readonly ops: OperationService;
  private readonly election: LeaderElection;
  private readonly intervalMs: number;
  private readonly minPassGapMs: number;
  private readonly repairBackoffMs: number;
  private readonly concurrency: number;
  private readonly retentionMs: number;
  private readonly log: Logger;
  private signal: AbortSignal | undefined;
  private timer: NodeJS.Timeout | undefined;
  private watcher: Watcher | undefined;
  private passing: Promise<void> | undefined;
  private again = false;
  private lastPassAt = 0;
  private readonly lastRepair = new Map<string, number>();
  private started = false;
  /** Duration of the last pass, ms (metrics). */
  lastPassMs = 0;
  passes = 0;

  constructor(opts: ReconcilerOptions) {
    this.store = opts.store;
    this.driver = opts.driver;
    this.ops = opts.operations;
    this.election = opts.election;
    this.intervalMs = Math.max(0.1, opts.intervalSeconds ?? 300) * 1000;
    this.minPassGapMs = opts.minPassGapMs ?? 2000;
    this.repairBackoffMs = opts.repairBackoffMs ?? 60_000;
    this.concurrency = opts.concurrency ?? 16;
    this.retentionMs = opts.operationRetentionMs ?? 7 * 86_400_000;
    this.log = opts.log ?? createLogger('reconciler');
  }

  /** Follows the election: runs while leader, stops on `lost`. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.election.on('acquired', this.onAcquired);
    this.election.on('lost', this.onLost);
    const s = this.election.leaderSignal();
    if (s) this.lead(s);
  }

  async stop(): Promise<void> {
    this.started = false;
    this.election.off('acquired', this.onAcquired);
    this.election.off('lost', this.onLost);
    this.halt();
    await this.passing;
  }

  private readonly onAcquired = (): void => {
    const s = this.election.leaderSignal();
    if (s && this.started) this.lead(s);
  };

  private readonly onLost = (): void => { this.halt(); };

  private lead(signal: AbortSignal): void {
    this.halt();
    this.signal = signal;
    signal.addEventListener('abort', () => this.halt(), { once: true });
    this.watcher = this.store.client.watch(this.store.keys.kind('databases'), { prefix: true }, () => this.kick());
    this.timer = setInterval(() => this.kick(), this.intervalMs);
    this.log.info({ interval_s: this.intervalMs / 1000 }, 'reconciler_started');
    this.kick();
  }

  private halt(): void {
    if (!this.signal) return;
    this.signal = undefined;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.watcher?.close();
    this.watcher = undefined;
    this.log.info({}, 'reconciler_stopped');
  }

  /** Asks for a pass (coalesced; spaced by minPassGapMs). */
  kick(): void {
    if (!this.signal) return;
    if (this.passing) { this.again = true; return; }
    const wait = Math.max(0, this.lastPassAt + this.minPassGapMs - Date.now());
    this.passing = (async () => {
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      do {
        this.again = false;
        const signal = this.signal;
        if (!signal || signal.aborted) return;
        try { await this.pass(signal); } catch (err) {
          this.log.warn({ err: asConureError(err).message }, 'reconcile_pass_failed');
        }
      } while (this.again && this.signal);
    })().finally(() => { this.passing = undefined; });
  }

  /** One pass; stops between databases when `signal` aborts (leadership lost). */
  async pass(signal: AbortSignal): Promise<PassResult> {
    const t0 = Date.now();
    this.lastPassAt = t0;
    const [dbs, lockKeys] = await Promise.all([this.store.listDatabases(), this.store.listKeys(this.store.keys.kind('locks'))]);
    const locked = new Set(lockKeys.map((k) => this.store.keys.idOf(k)));
    const repairs: string[] = [];
    let next = 0;
    let fenced = false;
    // Databases are looked at `concurrency` at a time; each submit is its own fenced txn.
    const worker = async () => {
      while (next < dbs.length && !signal.aborted && !fenced) {
        const db = dbs[next++]!.value;
        if (db.halted || db.deleting || locked.has(db.id)) continue;
        const why = await this.needsRepair(db);
        if (!why) continue;
        const last = this.lastRepair.get(db.id) ?? 0;
        if (Date.now() - last < this.repairBackoffMs) continue;
        try {
          const fence = this.election.fence();
          const r = await this.ops.submit({
            databaseId: db.id, tenant: db.tenant, type: 'repair', params: { engine: db.engine, reason: why, generation: db.generation },
            steps: stepsFor(db.engine, 'repair'), extra: { compares: fence },
          });
          this.lastRepair.set(db.id, Date.now());
          repairs.push(db.id);
          this.log.info({ database_id: db.id, operation_id: r.operation.id, reason: why }, 'repair_submitted');
        } catch (err) {
          const e = asConureError(err);
          if (e.code === 'permission_denied' || (e.code === 'conflict' && !this.election.isLeader())) {
            if (!fenced) this.log.warn({ err: e.message }, 'reconciler_fenced');
            fenced = true;
            return;
          }
          this.log.warn({ database_id: db.id, err: e.message, code: e.code }, 'repair_submit_failed');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, dbs.length) }, worker));
    const known = new Set(dbs.map((d) => d.value.id));
    const orphans = (await this.driver.list()).filter((id) => !known.has(id));
    if (orphans.length) this.log.warn({ instances: orphans }, 'orphan_instance');
    if (!signal.aborted && !fenced) {
      try { await this.expireOperations(); } catch (err) { this.log.warn({ err: asConureError(err).message }, 'operation_expiry_failed'); }
    }
    this.lastPassMs = Date.now() - t0;
    this.passes++;
    this.log.debug({ databases: dbs.length, repairs: repairs.length, duration_ms: this.lastPassMs }, 'reconcile_pass');
    return { databases: dbs.length, repairs, durationMs: this.lastPassMs };
  }

  /** Deletes finished operations older than the retention, with their Idempotency-Keys (fenced). */
  private async expireOperations(): Promise<number> {
    const k = this.store.keys;
    const cutoff = Date.now() - this.retentionMs;
    const { items } = await this.store.list<OperationRecord>(k.kind('operations'));
    const old = items.filter((o) => FINAL.has(o.value.state) && Date.parse(o.value.finishedAt ?? o.value.updatedAt) < cutoff);
    if (old.length === 0) return 0;
    const idem = await this.store.list<IdempotencyRecord>(k.kind('idempotency'));
    const keysOf = new Map<string, string[]>();
    for (const i of idem.items) keysOf.set(i.value.operationId, [...(keysOf.get(i.value.operationId) ?? []), i.key]);
    let n = 0;
    for (const o of old) {
      const r = await this.election.fencedTxn([op.delete(o.key), ...(keysOf.get(o.value.id) ?? []).map((key) => op.delete(key))], {
        compares: [compare.modRevision(o.key, '==', o.modRevision)],
      });
      if (r.succeeded) n++;
    }
    if (n) this.log.info({ count: n }, 'operations_expired');
    return n;
  }

  /** Why `db` should be repaired, or '' when it runs as desired. */
  private async needsRepair(db: DatabaseRecord): Promise<string> {
    const obs = await this.driver.observe(db);
    if (!obs.exists) return 'the instance does not exist';
    if (obs.running < obs.expected) return obs.detail ?? `${obs.expected - obs.running} process(es) not running`;
    if (db.observedGeneration < db.generation) return `generation ${db.generation} not converged (observed ${db.observedGeneration})`;
    return '';
  }
}
