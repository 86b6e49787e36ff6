/**
 * StatusSync: runs on every replica, every STATUS_SYNC_INTERVAL seconds. For each database it
 * asks the driver what runs (observe) and the instance's own API whether it serves, derives a
 * phase, and writes `status` with a mod-revision guard (a conflict means someone else wrote the
 * record meanwhile: skipped, the next pass looks again). A phase change appends an event.
 *
 * ```
 *  deleting                                   → Deleting
 *  halted                                     → Halted
 *  Fluxion  GET <http>/health 200             → Ready
 *  ConureDB every voter /ready, arbiter /health, /raft/config lists the planned members
 *                                             → Ready
 *           healthy voting members ≥ quorum, some down → Critical
 *  otherwise: never converged and an operation in flight → Provisioning
 *             the last operation failed               → Failed
 *             else                                    → NotReady
 * ```
 *
 * Probes run `concurrency` at a time with a 1 s timeout each, so a pass over N databases takes
 * about N / concurrency probe round trips. Errors of one database never stop the pass.
 */
import { ConureHttpClient } from '../../client/index.js';
import { asConureError, createLogger, type Logger } from '../../util/index.js';
import { conureDbTopology } from '../engines/index.js';
import { type PlatformStore, StoreConflictError, type LockRecord, type Versioned } from '../store/index.js';
import type { DatabaseRecord, DatabaseStatus, Driver, InstanceObservation, MemberStatus, OperationRecord, Phase } from '../types.js';

export interface StatusSyncOptions {
  store: PlatformStore;
  driver: Driver;
  /** Seconds between passes (STATUS_SYNC_INTERVAL, default 30). */
  intervalSeconds?: number;
  /** Probes in flight at once (default 16). */
  concurrency?: number;
  /** Per-probe timeout, ms (default 1000). */
  probeTimeoutMs?: number;
  log?: Logger;
}

export interface ProbeResult { phase: Phase; message: string; members?: MemberStatus[] }

const WARNING_PHASES = new Set<Phase>(['NotReady', 'Critical', 'Failed']);

export class StatusSync {
  private readonly store: PlatformStore;
  private readonly driver: Driver;
  readonly intervalMs: number;
  private readonly concurrency: number;
  private readonly probeTimeoutMs: number;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private passing: Promise<void> | undefined;
  private running = false;
  /** Duration of the last pass, ms. */
  lastPassMs = 0;
  /** Databases per phase after the last pass. */
  phases = new Map<Phase, number>();

  constructor(opts: StatusSyncOptions) {
    this.store = opts.store;
    this.driver = opts.driver;
    this.intervalMs = Math.max(0.1, opts.intervalSeconds ?? 30) * 1000;
    this.concurrency = opts.concurrency ?? 16;
    this.probeTimeoutMs = opts.probeTimeoutMs ?? 1000;
    this.log = opts.log ?? createLogger('status');
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const tick = () => {
      if (!this.running) return;
      this.passing = this.pass().catch((err) => { this.log.warn({ err: asConureError(err).message }, 'status_sync_failed'); })
        .finally(() => { this.passing = undefined; if (this.running) this.timer = setTimeout(tick, this.intervalMs); });
    };
    this.timer = setTimeout(tick, Math.min(1000, this.intervalMs));
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    await this.passing;
  }

  /** One pass over every database. */
  async pass(): Promise<void> {
    const t0 = Date.now();
    const [dbs, locks, ops] = await Promise.all([
      this.store.listDatabases(),
      this.store.list<LockRecord>(this.store.keys.kind('locks')),
      this.store.list<OperationRecord>(this.store.keys.kind('operations')),
    ]);
    const locked = new Set(locks.items.map((l) => this.store.keys.idOf(l.key)));
    const lastOp = new Map<string, OperationRecord>();
    for (const o of ops.items) {
      const prev = lastOp.get(o.value.databaseId);
      if (!prev || prev.createdAt <= o.value.createdAt) lastOp.set(o.value.databaseId, o.value);
    }
    const phases = new Map<Phase, number>();
    let next = 0;
    const worker = async () => {
      while (next < dbs.length) {
        const d = dbs[next++]!;
        try {
          const r = await this.probe(d.value, locked.has(d.value.id), lastOp.get(d.value.id));
          phases.set(r.phase, (phases.get(r.phase) ?? 0) + 1);
          await this.record(d, r);
        } catch (err) {
          this.log.warn({ database_id: d.value.id, err: asConureError(err).message }, 'status_probe_failed');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, dbs.length) }, worker));
    this.phases = phases;
    this.lastPassMs = Date.now() - t0;
  }

  /** The phase of one database now. */
  async probe(db: DatabaseRecord, inFlight: boolean, last?: OperationRecord): Promise<ProbeResult> {
    if (db.deleting) return { phase: 'Deleting', message: 'a delete is running' };
    if (db.halted) return { phase: 'Halted', message: 'halted on request; data kept' };
    const obs = await this.driver.observe(db);
    let serving: ProbeResult;
    if (!obs.exists) serving = { phase: 'NotReady', message: obs.detail ?? 'the instance does not exist' };
    else if (db.spec.engine === 'fluxion') serving = await this.probeFluxion(obs.endpoints.http);
    else serving = await this.probeConureDb(db, obs.members, obs.fullname);
    if (serving.phase === 'Ready' || serving.phase === 'Critical') return serving;
    if (db.observedGeneration === 0 && (inFlight || !last || last.state === 'queued' || last.state === 'running')) return { ...serving, phase: 'Provisioning' };
    if (!inFlight && last?.state === 'failed') return { ...serving, phase: 'Failed', message: `${last.type} ${last.id} failed: ${last.error?.message ?? ''}; ${serving.message}` };
    return serving;
  }

  private async probeFluxion(http: string | undefined): Promise<ProbeResult> {
    if (!http) return { phase: 'NotReady', message: 'no endpoint yet' };
    const r = await this.get(`${http}/health`);
    return r.ok ? { phase: 'Ready', message: '' } : { phase: 'NotReady', message: `${http}/health: ${r.detail}` };
  }

  private async probeConureDb(db: DatabaseRecord, members: InstanceObservation['members'], fullname?: string): Promise<ProbeResult> {
    const spec = db.spec as Extract<DatabaseRecord['spec'], { engine: 'conuredb' }>;
    const topo = conureDbTopology(spec, fullname);
    const statuses: MemberStatus[] = await Promise.all(topo.members.map(async (pm) => {
      const m = members.find((x) => x.id === pm.id);
      if (!m?.http || !m.running) return { id: pm.id, role: pm.role, healthy: false, detail: m ? 'process not running' : 'not created' };
      const r = await this.get(`${m.http}${pm.role === 'voter' ? '/ready' : '/health'}`);
      return { id: pm.id, role: pm.role, healthy: r.ok, ...(r.ok ? {} : { detail: r.detail }) };
    }));
    let membership = '';
    const voterUrls = members.filter((m) => m.role === 'voter' && m.http && m.running).map((m) => m.http!);
    if (voterUrls.length > 0) {
      try {
        const cfg = await new ConureHttpClient({ endpoints: voterUrls, timeoutMs: this.probeTimeoutMs }).raftConfig();
        const have = cfg.servers.map((s) => `${s.id}:${s.suffrage}`).sort().join(',');
        const want = topo.members.map((m) => `${m.id}:${m.role}`).sort().join(',');
        if (have !== want) membership = `raft membership is ${have}; planned ${want}`;
        for (const s of statuses) if (cfg.leader === s.id) s.leader = true;
      } catch (err) {
        membership = `raft configuration: ${asConureError(err).message}`;
      }
    } else membership = 'no voter is running';
    const healthy = statuses.filter((s) => s.healthy).length;
    const down = statuses.filter((s) => !s.healthy).map((s) => s.id);
    if (healthy === statuses.length && membership === '') return { phase: 'Ready', message: '', members: statuses };
    if (healthy >= topo.quorum && voterUrls.length > 0 && !membership.startsWith('raft configuration')) {
      return { phase: 'Critical', message: `quorum held; ${down.length ? `down: ${down.join(', ')}` : membership}`, members: statuses };
    }
    return { phase: 'NotReady', message: down.length ? `down: ${down.join(', ')}` : membership, members: statuses };
  }

  private async get(url: string): Promise<{ ok: boolean; detail: string }> {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(this.probeTimeoutMs) });
      await res.arrayBuffer();
      return { ok: res.ok, detail: `answered ${res.status}` };
    } catch (err) {
      return { ok: false, detail: (err as Error & { cause?: Error }).cause?.message ?? (err as Error).message };
    }
  }

  /** Writes the status when it changed (or is older than 10 passes); a guard conflict is skipped. */
  private async record(d: Versioned<DatabaseRecord>, r: ProbeResult): Promise<void> {
    const db = d.value;
    const before = db.status;
    const same = before.phase === r.phase && before.message === r.message && JSON.stringify(before.members ?? null) === JSON.stringify(r.members ?? null);
    const stale = Date.now() - Date.parse(before.observedAt) > 10 * this.intervalMs;
    if (same && !stale) return;
    const status: DatabaseStatus = { phase: r.phase, message: r.message, observedAt: new Date().toISOString(), ...(r.members && { members: r.members }) };
    try {
      await this.store.putDatabase({ ...db, status }, d.modRevision);
    } catch (err) {
      if (err instanceof StoreConflictError) return;
      throw err;
    }
    if (before.phase !== r.phase) {
      this.log.info({ database_id: db.id, from: before.phase, to: r.phase, message: r.message }, 'database_phase_changed');
      await this.store.appendEvent({
        at: status.observedAt, databaseId: db.id, type: WARNING_PHASES.has(r.phase) ? 'Warning' : 'Normal',
        reason: r.phase, message: r.message || `phase ${before.phase} → ${r.phase}`,
      });
    }
  }
}
