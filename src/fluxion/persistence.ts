/**
 * Durability for a `FluxionStore`: recovery at start-up (newest snapshot + WAL replay) and, while
 * running, a `CommitLog` that makes every mutation durable before it is applied and acknowledged,
 * plus background snapshots that bound the WAL.
 *
 * ```
 *   data dir/
 *     LOCK                              pid of the running server (refuses a second server)
 *     snapshot-00000000000001234567.snap   store as of LSN 1234567 (complete or absent)
 *     wal-00000000000001200001.log      segments; records with LSN > snapshot LSN are replayed
 *     wal-00000000000001240001.log      active segment
 * ```
 *
 * Snapshot cycle (one at a time): once `snapshotWalBytes` of WAL accumulated since the last
 * snapshot, rotate the WAL, pin the store (O(documents), copy-on-write), write the snapshot in the
 * background, then delete the snapshots and WAL segments it supersedes. A failed snapshot is
 * logged (`snapshot_failed`, with the cause such as `ENOSPC`) and retried at the next threshold;
 * the WAL is never deleted without a durable snapshot. A failed WAL write is logged once
 * (`wal_failed`); every later write is refused with that error and no snapshot is attempted.
 */
import { mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type Logger, InvalidArgumentError } from '../util/index.js';
import { applyOp, decodeLogged } from './ops.js';
import { listSnapshots, readSnapshot, removeOldSnapshots, writeSnapshot } from './snapshot.js';
import type { FluxionStore } from './store.js';
import { Wal, type DurableCallback } from './wal.js';

/**
 * Where mutations go before they are applied. `append` must invoke `onDurable` exactly once per
 * call, in call order, and only after the record is durable (or with the error that prevented it).
 */
export interface CommitLog {
  /** True when appended records survive a crash. */
  readonly durable: boolean;
  /** False once the log can no longer accept writes (e.g. a failed fsync). */
  readonly writable: boolean;
  append(op: number, payload: string, onDurable: (err: Error | null) => void): void;
  /** Flushes what is queued and releases files. Further appends fail. */
  close(): Promise<void>;
}

/** Memory-only mode (no `--data`): nothing is written; callbacks run synchronously. */
export class MemoryCommitLog implements CommitLog {
  readonly durable = false;
  readonly writable = true;
  append(_op: number, _payload: string, onDurable: (err: Error | null) => void): void { onDurable(null); }
  async close(): Promise<void> {}
}

export interface PersistenceOptions {
  dir: string;
  store: FluxionStore;
  /** The master key; never written to disk, needed to replay key changes. */
  masterKey: string;
  log: Logger;
  /** Take a snapshot after this many WAL bytes since the previous one (default 128 MiB). */
  snapshotWalBytes?: number;
  segmentBytesMax?: number;
  recordBytesMax?: number;
  onFsync?: (seconds: number, records: number, bytes: number) => void;
  onSnapshot?: (seconds: number, bytes: number) => void;
  now?: () => number;
}

/** What start-up recovered; `seconds` is wall time, `cpuSeconds` the process CPU time it took. */
export interface RecoveryStats { snapshotLsn: number; snapshotRecords: number; walRecords: number; seconds: number; cpuSeconds: number }

export class DurableLog implements CommitLog {
  readonly durable = true;
  /** What start-up recovered. */
  readonly recovery: RecoveryStats;
  private readonly opts: PersistenceOptions;
  private readonly wal: Wal;
  private appliedLsn: number;
  private bytesSinceSnapshot = 0;
  private snapshotting: Promise<void> | undefined;
  private closed = false;

  get writable(): boolean { return !this.closed && this.wal.failure === undefined; }

  private constructor(opts: PersistenceOptions, wal: Wal, appliedLsn: number, recovery: RecoveryStats) {
    this.opts = opts;
    this.wal = wal;
    this.appliedLsn = appliedLsn;
    this.recovery = recovery;
  }

  /**
   * Creates `opts.dir` if needed, takes the directory lock, loads the newest snapshot into
   * `opts.store` and replays the WAL after it. Throws `CorruptionError` for damaged files and
   * `InvalidArgumentError` when another live process holds the lock.
   */
  static async open(opts: PersistenceOptions): Promise<DurableLog> {
    const t0 = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    mkdirSync(opts.dir, { recursive: true });
    takeLock(opts.dir);
    const store = opts.store;
    await removeOldSnapshots(opts.dir, 0); // only clears leftover *.tmp files
    const snap = listSnapshots(opts.dir)[0];
    let snapshotLsn = 0;
    let snapshotRecords = 0;
    if (snap !== undefined) {
      const r = readSnapshot(snap.path, {
        apiKey: (k, s) => store.putApiKey(k, s),
        collection: () => undefined,
        value: (c, k, v) => store.setValue(c, k, v),
        run: (c, d, n, tsAt, lenAt, src, start) => store.restoreRun(c, d, n, tsAt, lenAt, src, start),
      });
      store.restoreDone();
      snapshotLsn = r.lsn;
      snapshotRecords = r.records;
    }
    let walRecords = 0;
    let lastLsn = snapshotLsn;
    const wal = await Wal.open(
      {
        dir: opts.dir, segmentBytesMax: opts.segmentBytesMax, recordBytesMax: opts.recordBytesMax, onFsync: opts.onFsync,
        // Logged once, with its cause: from here on every write is refused with this error.
        onFailure: (err) => opts.log.error({ err, cause: err.causeCode, dir: opts.dir }, 'wal_failed'),
      },
      snapshotLsn,
      (lsn, code, payload) => {
        applyOp(store, opts.masterKey, decodeLogged(code, payload, `${opts.dir} LSN ${lsn}`));
        walRecords++;
        lastLsn = lsn;
      },
    );
    store.pruneEmpty();
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    return new DurableLog(opts, wal, lastLsn, { snapshotLsn, snapshotRecords, walRecords, seconds, cpuSeconds });
  }

  append(op: number, payload: string, onDurable: (err: Error | null) => void): void {
    const cb: DurableCallback = (err, lsn) => {
      if (err === null) this.appliedLsn = lsn;
      onDurable(err);
    };
    this.wal.append(op, payload, cb);
    if (this.wal.failure !== undefined) return; // refused (the callback gets the error); no snapshot can help
    this.bytesSinceSnapshot += payload.length + 17;
    if (this.bytesSinceSnapshot >= (this.opts.snapshotWalBytes ?? 128 * 1024 * 1024) && this.snapshotting === undefined && !this.closed) {
      void this.snapshot();
    }
  }

  /**
   * Writes a snapshot now (or waits for the one in progress) and deletes what it supersedes.
   * Errors are logged, never thrown: the WAL still holds everything.
   */
  snapshot(): Promise<void> {
    if (this.snapshotting !== undefined) return this.snapshotting;
    this.bytesSinceSnapshot = 0;
    this.snapshotting = this.runSnapshot().finally(() => { this.snapshotting = undefined; });
    return this.snapshotting;
  }

  /** Waits for queued records and any snapshot in progress, then closes the WAL and the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.snapshotting !== undefined) await this.snapshotting;
    await this.wal.close();
    rmSync(join(this.opts.dir, 'LOCK'), { force: true });
  }

  private async runSnapshot(): Promise<void> {
    const t0 = process.hrtime.bigint();
    const { store, dir, log } = this.opts;
    try {
      await this.wal.rotate();
      if (this.wal.failure !== undefined) {
        log.warn({ err: this.wal.failure, reason: 'the write-ahead log has failed' }, 'snapshot_skipped');
        return;
      }
      const lsn = this.appliedLsn;
      const picture = store.pin();
      let result;
      try {
        result = await writeSnapshot(dir, lsn, picture, (this.opts.now ?? Date.now)());
      } finally {
        store.release(picture);
      }
      await removeOldSnapshots(dir, lsn);
      const segments = await this.wal.purgeThrough(lsn);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      this.opts.onSnapshot?.(seconds, result.bytes);
      log.info({ lsn, records: result.records, bytes: result.bytes, seconds, walSegmentsRemoved: segments }, 'snapshot_written');
    } catch (err) {
      // Retried once another snapshotWalBytes of WAL has accumulated (never in a loop); the WAL
      // still holds everything, so nothing acknowledged is lost.
      log.error({ err, cause: (err as { code?: unknown }).code }, 'snapshot_failed');
    }
  }
}

/**
 * Refuses to open a directory another live Fluxion process is using. A lock left by a dead
 * process, or whose pid now belongs to an unrelated process (pids are reused, e.g. across
 * container restarts), is taken over.
 */
function takeLock(dir: string): void {
  const path = join(dir, 'LOCK');
  let pid = 0;
  try { pid = Number(readFileSync(path, 'utf8').trim()); } catch { /* no lock */ }
  if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid) && looksLikeFluxion(pid)) {
    throw new InvalidArgumentError(`data directory ${dir} is in use by process ${pid}`);
  }
  writeFileSync(path, `${process.pid}\n`);
}

function isAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM'; }
}

/** Whether `pid`'s command line mentions fluxion; true when it cannot be read (be conservative). */
function looksLikeFluxion(pid: number): boolean {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('fluxion'); } catch { return true; }
}
