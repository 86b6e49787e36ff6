/**
 * WorkerPool: N workers in one process that claim queued operations and run their steps.
 *
 * ```
 *  process ── one lease (TTL leaseTtlSeconds, kept alive by a LeaseKeeper)
 *     │
 *     ├─ dispatcher: on start, every scanIntervalMs, on queue/ puts and claims/ deletes:
 *     │     for each queue/<op> without claims/<op>, while a worker is idle:
 *     │        txn  claims/<op> absent ∧ queue/<op> present  →  put claims/<op> = workerId (lease)
 *     │
 *     └─ worker w: run(op)
 *           state running, attempts+1          ─┐ every write of operations/<op> is a txn
 *           for each step not done:             │ guarded by  claims/<op> == workerId,
 *              running → executor.run → done    │ so a worker that lost its claim writes
 *              progress = done / total × 100    │ nothing (ClaimLostError, it stops)
 *           final txn: put final state · delete locks/<db>, queue/<op>, claims/<op>
 * ```
 *
 * A process killed with SIGKILL stops keeping its lease; at most a TTL later its claims vanish
 * with the lease, and another pool's dispatcher (watching claims/ deletions, or its periodic
 * scan) claims the operation and resumes it from the first step not `done` — a step that was
 * interrupted runs again, which is why steps are idempotent (see StepExecutor).
 *
 * Step errors: `unavailable` retries the step with exponential backoff (retryBaseMs doubling to
 * retryMaxMs, at most retryAttemptsMax tries), then fails the operation; any other error fails
 * it at once with `error {code, message}`. Store failures while persisting progress are retried
 * the same way. If the lease is lost, running steps are aborted (their signal fires), a fresh
 * lease is granted, and the operations are reclaimed like anyone else's.
 *
 * Logs: operation_workers_started {count}, operation_claimed, operation_step_done,
 * operation_succeeded, operation_failed, operation_claim_lost, operation_lease_lost.
 */
import { EventEmitter } from 'node:events';
import { compare, op, type LeaseKeeper, type Watcher } from '../../client/index.js';
import { asConureError, ConureError, createLogger, type Logger } from '../../util/index.js';
import type { OperationRecord, StepRecord } from '../types.js';
import type { PlatformStore, LockRecord } from '../store/index.js';
import { ClaimLostError, type StepExecutor } from './types.js';

export interface WorkerPoolOptions {
  store: PlatformStore;
  executor: StepExecutor;
  /** Workers in this process (NUM_OPERATION_WORKERS, default 3). */
  workers?: number;
  /** TTL of the process's lease, seconds (default 10). */
  leaseTtlSeconds?: number;
  /** Period of the queue scan that catches what watches missed, ms (default 2000). */
  scanIntervalMs?: number;
  /** Names this process in claims (default `<hostname-ish>-<pid>`). */
  instanceId?: string;
  retryBaseMs?: number;
  retryMaxMs?: number;
  retryAttemptsMax?: number;
  log?: Logger;
}

export interface WorkerState {
  id: string;
  busy: boolean;
  operationId?: string;
}

export interface WorkerPoolStats {
  /** Operations this pool runs now. */
  running: number;
  /** Entries in queue/ (queued or running, every process) at the last scan. */
  queueDepth: number;
  workers: WorkerState[];
}

interface Worker extends WorkerState { abort?: AbortController; done?: Promise<void> }

const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() { clearTimeout(t); signal?.removeEventListener('abort', done); resolve(); }
    signal?.addEventListener('abort', done, { once: true });
  });
}

export class WorkerPool extends EventEmitter {
  readonly instanceId: string;
  private readonly store: PlatformStore;
  private readonly executor: StepExecutor;
  private readonly log: Logger;
  private readonly leaseTtlSeconds: number;
  private readonly scanIntervalMs: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly retryAttemptsMax: number;
  private readonly workers: Worker[];
  private keeper: LeaseKeeper | undefined;
  private watchers: Watcher[] = [];
  private scanTimer: NodeJS.Timeout | undefined;
  private running = false;
  private dispatching: Promise<void> | undefined;
  private dispatchAgain = false;
  private queueDepth = 0;
  private renewing: Promise<void> | undefined;

  constructor(opts: WorkerPoolOptions) {
    super();
    this.store = opts.store;
    this.executor = opts.executor;
    this.instanceId = opts.instanceId ?? `worker-${process.pid}`;
    this.log = opts.log ?? createLogger('operations', { instance_id: this.instanceId });
    this.leaseTtlSeconds = opts.leaseTtlSeconds ?? 10;
    this.scanIntervalMs = Math.min(opts.scanIntervalMs ?? 2000, 2000);
    this.retryBaseMs = opts.retryBaseMs ?? 200;
    this.retryMaxMs = opts.retryMaxMs ?? 5000;
    this.retryAttemptsMax = opts.retryAttemptsMax ?? 8;
    const n = opts.workers ?? 3;
    if (!Number.isSafeInteger(n) || n < 1 || n > 256) throw new ConureError('invalid_argument', `workers must be 1..256, got ${n}`);
    this.workers = Array.from({ length: n }, (_, i) => ({ id: `${this.instanceId}/w${i}`, busy: false }));
  }

  /** Grants the lease, starts the watches and the scan, and claims what is queued. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.renewLease();
    const k = this.store.keys;
    this.watchers.push(this.store.client.watch(k.kind('queue'), { prefix: true }, (evs) => { if (evs.some((e) => e.type === 'put')) this.kick(); }));
    this.watchers.push(this.store.client.watch(k.kind('claims'), { prefix: true }, (evs) => {
      for (const e of evs) {
        if (e.type !== 'delete') continue;
        const opId = k.idOf(e.kv.key);
        const mine = this.workers.find((w) => w.operationId === opId);
        // Our claim vanished under a running worker: its lease lapsed; stop that worker now.
        if (mine && !this.finishing.has(opId)) mine.abort?.abort(new ClaimLostError(opId, mine.id));
      }
      this.kick();
    }));
    this.scanTimer = setInterval(() => this.kick(), this.scanIntervalMs);
    this.log.info({ count: this.workers.length, instance_id: this.instanceId }, 'operation_workers_started');
    this.kick();
  }

  /** Stops claiming, aborts running steps, waits for the workers and revokes the lease (claims go at once). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.scanTimer) clearInterval(this.scanTimer);
    for (const w of this.watchers) w.close();
    this.watchers = [];
    for (const w of this.workers) w.abort?.abort(new ConureError('closed', 'worker pool stopped'));
    await Promise.all(this.workers.map((w) => w.done));
    await this.dispatching;
    await this.keeper?.stop(true);
    this.keeper = undefined;
  }

  stats(): WorkerPoolStats {
    const workers = this.workers.map((w) => (w.operationId ? { id: w.id, busy: w.busy, operationId: w.operationId } : { id: w.id, busy: w.busy }));
    return { running: this.workers.filter((w) => w.busy).length, queueDepth: this.queueDepth, workers };
  }

  /** The lease the claims are bound to. */
  leaseId(): string | undefined { return this.keeper?.id; }

  private readonly finishing = new Set<string>();

  private async renewLease(): Promise<void> {
    for (let attempt = 0; this.running; attempt++) {
      try {
        const keeper = await this.store.client.grantAndKeep(this.leaseTtlSeconds);
        keeper.once('lost', (reason: string) => this.onLeaseLost(keeper, reason));
        this.keeper = keeper;
        return;
      } catch (err) {
        if (attempt === 0) this.log.warn({ err: asConureError(err).message }, 'operation_lease_grant_failed');
        await sleep(Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** Math.min(attempt, 10)));
      }
    }
  }

  private onLeaseLost(keeper: LeaseKeeper, reason: string): void {
    if (this.keeper !== keeper || !this.running) return;
    this.keeper = undefined;
    this.log.warn({ lease_id: keeper.id, reason }, 'operation_lease_lost');
    for (const w of this.workers) w.abort?.abort(new ConureError('conflict', `lease lost: ${reason}`));
    this.renewing ??= this.renewLease().finally(() => { this.renewing = undefined; this.kick(); });
  }

  /** Asks the dispatcher to look at the queue (coalesced). */
  private kick(): void {
    if (!this.running) return;
    if (this.dispatching) { this.dispatchAgain = true; return; }
    this.dispatching = (async () => {
      do {
        this.dispatchAgain = false;
        try { await this.dispatchOnce(); } catch (err) {
          this.log.warn({ err: asConureError(err).message }, 'operation_dispatch_failed');
        }
      } while (this.dispatchAgain && this.running);
    })().finally(() => { this.dispatching = undefined; });
  }

  private async dispatchOnce(): Promise<void> {
    const k = this.store.keys;
    const [queue, claims] = await Promise.all([this.store.listKeys(k.kind('queue')), this.store.listKeys(k.kind('claims'))]);
    this.queueDepth = queue.length;
    const claimed = new Set(claims.map((c) => k.idOf(c)));
    for (const qk of queue) {
      const lease = this.keeper?.id;
      if (!this.running || !lease || !this.keeper?.isAlive()) return;
      const idle = this.workers.find((w) => !w.busy);
      if (!idle) return;
      const opId = k.idOf(qk);
      if (claimed.has(opId)) continue;
      const claimKey = k.claim(opId);
      const r = await this.store.client.runTxn({
        compare: [compare.absent(claimKey), compare.present(qk)],
        success: [op.put(claimKey, idle.id, { lease })],
      });
      if (!r.succeeded) continue;
      this.launch(idle, opId);
    }
  }

  private launch(w: Worker, opId: string): void {
    w.busy = true;
    w.operationId = opId;
    w.abort = new AbortController();
    w.done = this.runOperation(w, opId, w.abort.signal)
      .catch((err) => {
        const e = asConureError(err);
        if (e instanceof ClaimLostError || w.abort?.signal.aborted) this.log.warn({ operation_id: opId, worker_id: w.id, reason: e.message }, 'operation_claim_lost');
        else this.log.error({ operation_id: opId, worker_id: w.id, err: e.message, code: e.code }, 'operation_worker_error');
      })
      .finally(() => {
        w.busy = false;
        delete w.operationId;
        delete w.abort;
        this.emit('idle', w.id);
        this.kick();
      });
  }

  /** Retries `fn` on `unavailable` with bounded backoff; anything else (or the last failure) is thrown. */
  private async retrying<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) throw asConureError(signal.reason);
      try { return await fn(); } catch (err) {
        const e = asConureError(err);
        if (e.code !== 'unavailable' || attempt >= this.retryAttemptsMax || signal.aborted) throw e;
        await sleep(Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** (attempt - 1)), signal);
      }
    }
  }

  private async runOperation(w: Worker, opId: string, signal: AbortSignal): Promise<void> {
    const k = this.store.keys;
    const claimKey = k.claim(opId);
    const guard = compare.value(claimKey, '==', w.id);
    const rec = await this.retrying(signal, () => this.store.getOperation(opId));
    if (!rec) {
      // Orphaned queue entry: drop it (and our claim).
      await this.store.client.runTxn({ compare: [guard], success: [op.delete(k.queue(opId)), op.delete(claimKey)] });
      return;
    }
    const opRec: OperationRecord = rec.value;
    let writes: Promise<void> = Promise.resolve();
    const persist = (): Promise<void> => {
      const snapshot = JSON.parse(JSON.stringify(opRec)) as OperationRecord;
      snapshot.updatedAt = new Date().toISOString();
      const next = writes.then(() => this.retrying(signal, async () => {
        const r = await this.store.client.runTxn({ compare: [guard], success: [op.putJson(k.operation(opId), snapshot)] });
        if (!r.succeeded) throw new ClaimLostError(opId, w.id);
      }));
      writes = next.catch(() => {});
      return next;
    };

    if (!FINAL.has(opRec.state)) {
      if (opRec.steps.length === 0) opRec.steps = this.executor.steps(opRec).map((name): StepRecord => ({ name, state: 'pending' }));
      opRec.state = 'running';
      opRec.attempts += 1;
      opRec.worker = w.id;
      await persist();
      this.log.info({ operation_id: opId, database_id: opRec.databaseId, type: opRec.type, worker_id: w.id, attempt: opRec.attempts }, 'operation_claimed');

      let failure: ConureError | undefined;
      const total = opRec.steps.length;
      for (const step of opRec.steps) {
        if (step.state === 'done') continue;
        step.state = 'running';
        step.startedAt = new Date().toISOString();
        delete step.message;
        await persist();
        const ctx = {
          signal, workerId: w.id,
          report: (message: string) => { step.message = message; persist().catch(() => {}); },
        };
        try {
          await this.retrying(signal, () => this.executor.run(opRec, step.name, ctx));
        } catch (err) {
          if (signal.aborted) throw asConureError(signal.reason);
          failure = asConureError(err);
          step.state = 'failed';
          step.finishedAt = new Date().toISOString();
          step.message = failure.message;
          break;
        }
        if (signal.aborted) throw asConureError(signal.reason);
        step.state = 'done';
        step.finishedAt = new Date().toISOString();
        opRec.progress = Math.round((opRec.steps.filter((s) => s.state === 'done').length / Math.max(1, total)) * 100);
        await persist();
        this.log.info({ operation_id: opId, database_id: opRec.databaseId, step: step.name, worker_id: w.id, progress: opRec.progress }, 'operation_step_done');
      }
      const now = new Date().toISOString();
      opRec.state = failure ? 'failed' : 'succeeded';
      if (failure) opRec.error = { code: failure.code, message: failure.message };
      else opRec.progress = 100;
      opRec.finishedAt = now;
      opRec.updatedAt = now;
    }

    // The final txn: state, lock, queue entry and claim change together.
    this.finishing.add(opId);
    try {
      await writes;
      await this.retrying(signal, async () => {
        const lock = await this.store.read<LockRecord>(k.lock(opRec.databaseId));
        const ops = [op.putJson(k.operation(opId), opRec), op.delete(k.queue(opId)), op.delete(claimKey)];
        const compares = [guard];
        if (lock && lock.value.operationId === opId) {
          ops.push(op.delete(k.lock(opRec.databaseId)));
          compares.push(compare.modRevision(k.lock(opRec.databaseId), '==', lock.modRevision));
        }
        const r = await this.store.client.runTxn({ compare: compares, success: ops });
        if (!r.succeeded) {
          // An earlier try may have committed and lost only its answer.
          const now = await this.store.getOperation(opId);
          if (now && now.value.state === opRec.state && now.value.finishedAt === opRec.finishedAt) return;
          const still = await this.store.client.get(claimKey);
          if (still?.value.toString() !== w.id) throw new ClaimLostError(opId, w.id);
          throw new ConureError('unavailable', 'lock changed while finishing; retrying');
        }
      });
    } finally {
      this.finishing.delete(opId);
    }
    const fields = { operation_id: opId, database_id: opRec.databaseId, type: opRec.type, worker_id: w.id, attempts: opRec.attempts };
    if (opRec.state === 'succeeded') this.log.info(fields, 'operation_succeeded');
    else this.log.warn({ ...fields, error: opRec.error }, `operation_${opRec.state}`);
    this.emit('finished', opRec);
  }
}
