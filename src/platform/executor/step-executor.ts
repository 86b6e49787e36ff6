/**
 * PlatformExecutor: the StepExecutor of the platform. Maps each engine step (engines/steps.ts)
 * to Driver calls and records what they did in the store.
 *
 * ```
 *  step            driver call                          store writes (databases/<id> guarded, retried)
 *  allocate-ports  PortAllocator.allocate per request   —   (LocalDriver.apply repeats it; idempotent per owner)
 *  apply           driver.apply(db, secret)             endpoints
 *  wait-ready      driver.waitReady(db, bounded)        status Ready, observedGeneration = generation
 *  backup          driver.backup(db, secret, id),       backups/<db>/<id> (BackupRecord)
 *                  then driver.waitReady (Fluxion restarts)
 *  restore         driver.restore(db, secret, backup)   endpoints
 *  halt            driver.halt(db)                      halted = true, status Halted
 *  remove          driver.remove(db, policy)            delete databases/<id>, secrets/<id>, events
 *                                                       (+ backups/<id>/ for WipeOut)
 * ```
 *
 * The desired state is the database record: the API writes a spec change (generation + 1),
 * `halted`, `deleting` or a new key in the secret in the same txn as the operation, so a step
 * always converges to what the record says now. Every step is idempotent (the driver's calls
 * are), so a step interrupted by a dead worker is simply run again.
 *
 * Operation params the executor reads: `engine` (every op), `backupId` (backup, restore),
 * `sourceDatabaseId` (restore: the database the backup was taken of), `policy` (delete).
 *
 * Events (reason), one per step that finishes, appended to events/<db>/: allocate-ports →
 * Provisioning (create) or PortsAllocated; apply → Applied; restore → BackupRestored; wait-ready →
 * Ready (create), Resized, Scaled, Updated, Resumed, Repaired, KeyRotated, Restored; backup →
 * BackupCompleted; halt → Halted; remove deletes the events with the record. A step that fails
 * (other than `unavailable`, which is retried) appends StepFailed (Warning).
 *
 * Errors: `not_found` when the database or backup vanished, the driver's ConureErrors otherwise
 * (`unavailable` is retried by the worker pool).
 */
import { ConureError, InvalidArgumentError, createLogger, type Logger } from '../../util/index.js';
import { portRequests, stepsFor, type StepName } from '../engines/index.js';
import type { StepContext, StepExecutor } from '../operations/index.js';
import { type PlatformStore, StoreConflictError, type Versioned } from '../store/index.js';
import type { BackupRecord, DatabaseRecord, Driver, EngineName, EventRecord, InstanceSecret, OperationRecord, PortAllocator } from '../types.js';

export interface PlatformExecutorOptions {
  store: PlatformStore;
  driver: Driver;
  /** Early port reservation for `allocate-ports` (local driver); none for kubernetes. */
  ports?: PortAllocator;
  /** Bound of one wait-ready step, ms (default 120 s). */
  waitReadyTimeoutMs?: number;
  log?: Logger;
}

/** The event reason a finished operation records, per type. */
const DONE_REASON: Record<OperationRecord['type'], string> = {
  create: 'Ready', resize: 'Resized', scale: 'Scaled', update: 'Updated', resume: 'Resumed', repair: 'Repaired',
  'rotate-key': 'KeyRotated', restore: 'Restored', backup: 'BackupCompleted', halt: 'Halted', delete: 'Deleted',
};

export class PlatformExecutor implements StepExecutor {
  private readonly store: PlatformStore;
  private readonly driver: Driver;
  private readonly ports: PortAllocator | undefined;
  private readonly waitReadyTimeoutMs: number;
  private readonly log: Logger;

  constructor(opts: PlatformExecutorOptions) {
    this.store = opts.store;
    this.driver = opts.driver;
    this.ports = opts.ports;
    this.waitReadyTimeoutMs = opts.waitReadyTimeoutMs ?? 120_000;
    this.log = opts.log ?? createLogger('executor');
  }

  steps(op: OperationRecord): string[] {
    return stepsFor(engineOf(op), op.type);
  }

  async run(op: OperationRecord, step: string, ctx: StepContext): Promise<void> {
    try {
      await this.runStep(op, step, ctx);
    } catch (err) {
      const e = err as ConureError;
      if (e.code !== 'unavailable' && !ctx.signal.aborted && step !== 'remove') await this.event(op.databaseId, 'Warning', 'StepFailed', `${op.type} step ${step} failed: ${e.message}`);
      throw err;
    }
  }

  private async runStep(op: OperationRecord, step: string, ctx: StepContext): Promise<void> {
    const cur = await this.store.getDatabase(op.databaseId);
    if (!cur) {
      // A remove that already deleted the record (its worker died after the delete) is done.
      if (step === 'remove') return;
      throw new ConureError('not_found', `database ${op.databaseId} no longer exists`);
    }
    const db = cur.value;
    const last = op.steps[op.steps.length - 1]?.name === step;
    switch (step as StepName) {
      case 'allocate-ports': {
        if (this.ports) for (const r of portRequests(db.id, db.spec)) await this.ports.allocate(r.owner, r.count);
        if (op.type === 'create') await this.event(db.id, 'Normal', 'Provisioning', `provisioning ${db.engine} ${describeSpec(db)}`);
        else await this.event(db.id, 'Normal', 'PortsAllocated', `ports reserved for ${describeSpec(db)}`);
        return;
      }
      case 'apply': {
        ctx.report(`applying generation ${db.generation}`);
        const endpoints = await this.driver.apply(db, await this.secret(db.id), ctx.signal);
        await this.update(db.id, (d) => { d.endpoints = endpoints; });
        await this.event(db.id, 'Normal', 'Applied', `generation ${db.generation} applied (${describeSpec(db)}); endpoints ${Object.values(endpoints).join(' ')}`);
        if (last) await this.converged(op, db.generation);
        return;
      }
      case 'wait-ready': {
        ctx.report('waiting for the instance to serve');
        await this.driver.waitReady(db, this.waitReadyTimeoutMs, ctx.signal);
        await this.converged(op, db.generation);
        return;
      }
      case 'backup': {
        const backupId = stringParam(op, 'backupId');
        const existing = await this.store.getBackup(db.id, backupId);
        if (existing) {
          // Recorded by a worker that died before the instance served again.
          if (!db.halted) await this.driver.waitReady(db, this.waitReadyTimeoutMs, ctx.signal);
          return;
        }
        const r = await this.driver.backup(db, await this.secret(db.id), backupId);
        const rec: BackupRecord = {
          id: backupId, databaseId: db.id, tenant: db.tenant, engine: db.engine, location: r.location, sizeBytes: r.sizeBytes, createdAt: new Date().toISOString(),
        };
        await this.store.putBackup(rec);
        // A Fluxion backup stops and restarts the process: the operation ends once it serves again.
        if (!db.halted) await this.driver.waitReady(db, this.waitReadyTimeoutMs, ctx.signal);
        await this.event(db.id, 'Normal', 'BackupCompleted', `backup ${backupId} taken (${r.sizeBytes} bytes)`);
        return;
      }
      case 'restore': {
        const backupId = stringParam(op, 'backupId');
        const source = stringParam(op, 'sourceDatabaseId');
        const b = await this.store.getBackup(source, backupId);
        if (!b) throw new ConureError('not_found', `backup ${backupId} of database ${source} does not exist`);
        if (b.value.tenant !== db.tenant) throw new ConureError('not_found', `backup ${backupId} does not exist`);
        if (b.value.engine !== db.engine) throw new InvalidArgumentError(`backup ${backupId} is of a ${b.value.engine} database; ${db.id} is ${db.engine}`);
        ctx.report(`restoring backup ${backupId}`);
        const endpoints = await this.driver.restore(db, await this.secret(db.id), b.value);
        await this.update(db.id, (d) => { d.endpoints = endpoints; });
        await this.event(db.id, 'Normal', 'BackupRestored', `data replaced by backup ${backupId} of ${source}`);
        return;
      }
      case 'halt': {
        await this.driver.halt(db);
        await this.update(db.id, (d) => {
          d.halted = true;
          d.status = { ...d.status, phase: 'Halted', message: 'halted on request; data kept', observedAt: new Date().toISOString() };
        });
        await this.event(db.id, 'Normal', 'Halted', 'instance stopped, data kept');
        return;
      }
      case 'remove': {
        const policy = op.params.policy === 'WipeOut' ? 'WipeOut' : 'Delete';
        await this.driver.remove(db, policy);
        const k = this.store.keys;
        if (policy === 'WipeOut') await this.store.client.delete(k.backups(db.id), { prefix: true });
        await this.store.deleteSecret(db.id);
        await this.store.deleteEvents(db.id);
        await this.store.deleteDatabase(db.id);
        this.log.info({ database_id: db.id, policy }, 'database_deleted');
        return;
      }
      default:
        throw new InvalidArgumentError(`unknown step ${JSON.stringify(step)}`);
    }
  }

  /** The operation reached its spec: status Ready, observedGeneration, and its event. */
  private async converged(op: OperationRecord, generation: number): Promise<void> {
    await this.update(op.databaseId, (d) => {
      d.observedGeneration = Math.max(d.observedGeneration, generation);
      // Member details come from status sync's next probe; the old ones may predate this operation.
      d.status = { phase: 'Ready', message: '', observedAt: new Date().toISOString() };
    });
    await this.event(op.databaseId, 'Normal', DONE_REASON[op.type], `${op.type} ${op.id} converged to generation ${generation}`);
  }

  private async secret(dbId: string): Promise<InstanceSecret> {
    return (await this.store.getSecret(dbId))?.value ?? {};
  }

  /** Read-modify-write of a database record under its mod revision (status sync may race). */
  private async update(id: string, mutate: (d: DatabaseRecord) => void): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const cur: Versioned<DatabaseRecord> | undefined = await this.store.getDatabase(id);
      if (!cur) throw new ConureError('not_found', `database ${id} no longer exists`);
      const next = structuredClone(cur.value);
      mutate(next);
      next.updatedAt = new Date().toISOString();
      try {
        await this.store.putDatabase(next, cur.modRevision);
        return;
      } catch (err) {
        if (!(err instanceof StoreConflictError) || attempt >= 20) throw err;
      }
    }
  }

  private async event(databaseId: string, type: EventRecord['type'], reason: string, message: string): Promise<void> {
    try {
      await this.store.appendEvent({ at: new Date().toISOString(), databaseId, type, reason, message });
    } catch (err) {
      this.log.warn({ database_id: databaseId, reason, err: (err as Error).message }, 'event_append_failed');
    }
  }
}

/** The engine an operation is for (every submit records it in params). */
export function engineOf(op: OperationRecord): EngineName {
  const e = op.params.engine;
  if (e !== 'fluxion' && e !== 'conuredb') throw new InvalidArgumentError(`operation ${op.id} has no engine in its params`);
  return e;
}

function stringParam(op: OperationRecord, name: string): string {
  const v = op.params[name];
  if (typeof v !== 'string' || v === '') throw new InvalidArgumentError(`operation ${op.id} (${op.type}) needs the parameter ${name}`);
  return v;
}

function describeSpec(db: DatabaseRecord): string {
  const s = db.spec;
  return s.engine === 'fluxion' ? `ram ${s.ram}, storage ${s.storage}` : `${s.voters} voter(s), arbiter ${s.arbiter}, storage ${s.storage}`;
}
