import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { ClosedError, ConureError } from '../util/index.js';
import { checkBucket, validateOp } from './memory-state-store.js';
import { decodeUint64, encodeUint64, type KeyValue, type RangeOptions, type StateOp, type StateStore } from './state-store.js';

const META = '__meta';
const APPLIED_KEY = new TextEncoder().encode('applied_index');
const BUCKETS_KEY = new TextEncoder().encode('buckets');

export interface LmdbStateStoreOptions {
  /** Directory holding `state.mdb`; created if missing. */
  dir: string;
  /** LMDB map size in bytes (grows automatically in lmdb-js); default 1 GiB. */
  mapSizeBytes?: number;
  /**
   * true (default): every commit is fsynced, and `sync()` waits for it. false: commits are not
   * fsynced (they survive a process crash, not a machine crash) and `sync()` forces one fsync.
   * Raft members use false: their raft log is durable and replays anything the store lost, and
   * they call `sync()` before letting the log be compacted behind the store.
   */
  fsyncOnCommit?: boolean;
  /**
   * Test-only: skip fsync entirely, even in `sync()`. Used by the fault suite's mutation check to
   * prove the suite notices unsynced acknowledgements. Never set in production.
   */
  unsafeNoSync?: boolean;
  /** Receives the duration of every write transaction's commit (etcd's backend commit metric). */
  onCommitSeconds?: (seconds: number) => void;
}

/**
 * The LMDB-backed StateStore. One LMDB environment (`<dir>/state.mdb`), one named database per
 * bucket plus `__meta`. `apply` runs one synchronous write transaction (visible immediately);
 * `sync()` awaits lmdb's `flushed` promise, which resolves once the commit is fsynced
 * (lmdb-js `overlappingSync`: the fsync happens off the write lock, so many applies share one
 * flush).
 *
 * Limits: LMDB keys are at most 1978 bytes (lmdb-js); longer keys are refused with
 * `InvalidArgumentError` by the layers above, which document their own smaller limits.
 */
export class LmdbStateStore implements StateStore {
  private readonly root: RootDatabase;
  private readonly meta: Database<Uint8Array, Uint8Array>;
  private readonly dbs = new Map<string, Database<Uint8Array, Uint8Array>>();
  private readonly path: string;
  private readonly deferredSync: boolean;
  private readonly noSyncAtAll: boolean;
  private readonly onCommitSeconds: ((seconds: number) => void) | undefined;
  private applied: number;
  private closed = false;
  private inBatch = false;
  /** Buckets first opened inside the running batch: their handles die if it aborts. */
  private openedInBatch: string[] = [];

  constructor(opts: LmdbStateStoreOptions) {
    mkdirSync(opts.dir, { recursive: true });
    this.path = join(opts.dir, 'state.mdb');
    this.noSyncAtAll = opts.unsafeNoSync ?? false;
    this.onCommitSeconds = opts.onCommitSeconds;
    this.deferredSync = !this.noSyncAtAll && opts.fsyncOnCommit === false;
    const noSync = this.noSyncAtAll || this.deferredSync;
    try {
      this.root = open({
        path: this.path,
        maxDbs: 64,
        mapSize: opts.mapSizeBytes ?? 1024 ** 3,
        overlappingSync: !noSync,
        noSync,
        compression: false,
      });
    } catch (err) {
      throw new ConureError('internal', `cannot open state store at ${this.path}: ${(err as Error).message}`, { cause: err });
    }
    this.meta = this.openBucketDb(META);
    const raw = this.meta.get(APPLIED_KEY);
    this.applied = raw ? decodeUint64(raw) : 0;
    const names = this.meta.get(BUCKETS_KEY);
    if (names) for (const b of new TextDecoder().decode(names).split(',').filter(Boolean)) this.db(b);
  }

  appliedIndex(): number { this.check(); return this.applied; }

  get(bucket: string, key: Uint8Array): Uint8Array | undefined {
    const v = this.db(bucket).get(key);
    return v === undefined ? undefined : new Uint8Array(v);
  }

  range(bucket: string, opts: RangeOptions = {}): KeyValue[] {
    const db = this.db(bucket);
    const out: KeyValue[] = [];
    const limit = opts.limit !== undefined && opts.limit > 0 ? opts.limit : Infinity;
    const q: { start?: Uint8Array; end?: Uint8Array; reverse?: boolean; inclusiveEnd?: boolean } = {};
    if (opts.reverse) {
      // lmdb-js walks a reverse range from `start` (inclusive) down to `end`; our bounds are
      // [start, end), so begin at `end`, skip it if present, and stop at `start` inclusive.
      if (opts.end) q.start = opts.end;
      if (opts.start) { q.end = opts.start; q.inclusiveEnd = true; }
      q.reverse = true;
    } else {
      if (opts.start) q.start = opts.start;
      if (opts.end) q.end = opts.end;
    }
    for (const { key, value } of db.getRange(q)) {
      if (out.length >= limit) break;
      if (opts.reverse && opts.end && Buffer.compare(key as Uint8Array, opts.end) >= 0) continue;
      out.push({ key: new Uint8Array(key as Uint8Array), value: new Uint8Array(value) });
    }
    return out;
  }

  count(bucket: string, opts: Omit<RangeOptions, 'limit' | 'reverse'> = {}): number {
    const q: { start?: Uint8Array; end?: Uint8Array } = {};
    if (opts.start) q.start = opts.start;
    if (opts.end) q.end = opts.end;
    return this.db(bucket).getKeysCount(q);
  }

  apply(index: number, ops: readonly StateOp[]): boolean {
    this.check();
    if (index <= this.applied) return false;
    for (const op of ops) validateOp(op);
    const dbs = ops.map((op) => this.db(op.bucket));
    this.batch(() => {
      ops.forEach((op, i) => {
        if (op.op === 'put') dbs[i]!.putSync(op.key, op.value);
        else dbs[i]!.removeSync(op.key);
      });
      this.meta.putSync(APPLIED_KEY, encodeUint64(index));
    });
    this.applied = index;
    return true;
  }

  batch<T>(fn: () => T): T {
    this.check();
    if (this.inBatch) return fn();
    const appliedBefore = this.applied;
    this.inBatch = true;
    this.openedInBatch = [];
    const started = performance.now();
    try {
      const result = this.root.transactionSync(fn);
      this.onCommitSeconds?.((performance.now() - started) / 1000);
      return result;
    } catch (err) {
      this.applied = appliedBefore;
      for (const b of this.openedInBatch) this.dbs.delete(b);
      if (err instanceof ConureError) throw err;
      throw new ConureError('internal', `state store write failed: ${(err as Error).message}`, { cause: err });
    } finally {
      this.inBatch = false;
    }
  }

  async sync(): Promise<void> {
    this.check();
    if (this.deferredSync) {
      await envSync(this.root);
      return;
    }
    await this.root.flushed;
  }

  sizeBytes(): number {
    try { return statSync(this.path).size; } catch { return 0; }
  }

  buckets(): string[] {
    return [...this.dbs.keys()].filter((b) => b !== META && this.db(b).getKeysCount() > 0).sort();
  }

  async restore(index: number, data: ReadonlyMap<string, KeyValue[]>): Promise<void> {
    this.check();
    for (const b of data.keys()) checkBucket(b);
    for (const b of data.keys()) this.db(b);
    this.root.transactionSync(() => {
      for (const [name, db] of this.dbs) if (name !== META) db.clearSync();
      for (const [b, rows] of data) for (const r of rows) this.db(b).putSync(r.key, r.value);
      this.meta.putSync(APPLIED_KEY, encodeUint64(index));
    });
    this.applied = index;
    await this.root.flushed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (!this.noSyncAtAll) await this.sync();
    this.closed = true;
    await this.root.close();
  }

  private db(bucket: string): Database<Uint8Array, Uint8Array> {
    this.check();
    let db = this.dbs.get(bucket);
    if (db) return db;
    checkBucket(bucket);
    db = this.openBucketDb(bucket);
    this.dbs.set(bucket, db);
    if (this.inBatch) this.openedInBatch.push(bucket);
    const names = [...this.dbs.keys()].filter((b) => b !== META).sort().join(',');
    this.meta.putSync(BUCKETS_KEY, new TextEncoder().encode(names));
    return db;
  }

  private openBucketDb(name: string): Database<Uint8Array, Uint8Array> {
    return this.root.openDB<Uint8Array, Uint8Array>(name, { encoding: 'binary', keyEncoding: 'binary' });
  }

  private check(): void { if (this.closed) throw new ClosedError('state store'); }
}

/** Forces an fsync of an environment opened with noSync (lmdb-js `sync`, missing from its types). */
export function envSync(root: RootDatabase): Promise<void> {
  const env = root as unknown as { sync(cb: (err?: Error) => void): void };
  return new Promise<void>((resolve, reject) => env.sync((err) => (err ? reject(new ConureError('internal', `fsync failed: ${err.message}`, { cause: err })) : resolve())));
}
