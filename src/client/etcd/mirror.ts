/**
 * EtcdMirror: copies a live etcd v3 keyspace (or one prefix of it) into another etcd v3 server
 * (a ConureDB cluster), keeping keys, values, lease ids and lease attachments, then follows the
 * source's changes until stopped, and checks at the end that the two agree. The logic behind
 * `conurectl migrate from-etcd`; it only reads from the source.
 *
 * ```
 *   preflight   both sides answer; the target holds no key in scope (or --force: they are deleted)
 *   copy        R = source revision; leases in scope → LeaseGrant(ID, TTL) on the target;
 *               Range pages at revision R (adaptive size) → Txns of puts (≤ 128 ops, ≤ 1 MiB)
 *   mirror      Watch(start R+1) ──► events grouped by revision ──► one target Txn per revision
 *                                    (consecutive revisions with disjoint keys may share one)
 *               every leaseSyncMs: LeaseLeases on the source ──► grant new / revoke ended leases
 *                                  on the target; keep target leases alive (TTL/3)
 *   stop        last lease sync; S = source revision; watch progress ≥ S (every event ≤ S applied)
 *   check       source at revision P (applied through) vs target, key by key in key order:
 *               value and lease; then the leases in scope on both sides
 * ```
 *
 * What is kept: keys (bytes), values (bytes), lease ids, lease attachments, the leases' granted
 * TTLs (`leaseTtl: 'granted'`, the default) or their remaining TTLs at copy time
 * (`'remaining'`). What is not: revisions, versions and create revisions — the target numbers
 * its own writes — and the history before R (the target starts at the copy).
 *
 * Lease lifetimes: a target lease is kept alive for as long as the lease exists on the source,
 * and revoked on the target (its keys with it) within about `leaseSyncMs` of its end on the
 * source (expiry or revoke). So while mirroring, a target lease never ends before the source's
 * and at most a sync period after it. Once the mirror stops nothing renews them: each runs out
 * its TTL from the last renewal unless its clients, moved over, keep it alive on the target.
 *
 * Bounds: every call has the clients' deadline; Range pages hold at most `pageKeysMax` keys and
 * aim at `pageBytesTarget` bytes; at most `writesInFlightMax` target Txns are in flight during
 * the copy; a slow target pauses the watch stream (the Watcher's flow control); a failing
 * target write is retried for `targetRetryMs`, then the mirror fails. The check and the copy
 * stream pages, so memory is about a page, not the keyspace.
 *
 * Errors: MirrorError with a stable `reason` (`source_unreachable`, `target_unreachable`,
 * `target_not_empty`, `lease_conflict`, `compacted`, `lease_lost`, `failed`); the message says
 * what to do.
 */
import { ConureError } from '../../util/index.js';
import { prefixEnd, toBuffer } from './bytes.js';
import type { EtcdClient } from './client.js';
import type { KeyValue, TxnOp, WatchEvent } from './types.js';
import type { Watcher } from './watch.js';

export type MirrorErrorReason =
  | 'source_unreachable' | 'target_unreachable' | 'target_not_empty' | 'lease_conflict'
  | 'compacted' | 'lease_lost' | 'failed';

export class MirrorError extends ConureError {
  constructor(readonly reason: MirrorErrorReason, message: string, options?: { cause?: unknown }) {
    super(reason === 'source_unreachable' || reason === 'target_unreachable' ? 'unavailable' : reason === 'target_not_empty' || reason === 'lease_conflict' ? 'conflict' : 'internal', message, options);
  }
}

export interface MirrorOptions {
  source: EtcdClient;
  target: EtcdClient;
  /** Only keys starting with these bytes (default: every key). */
  prefix?: Uint8Array | string;
  /** Write into a target that holds keys in scope: they are deleted first (default false). */
  force?: boolean;
  /** TTL given to re-created leases: the source's granted TTL (default) or what remained of it. */
  leaseTtl?: 'granted' | 'remaining';
  /** Most keys per Range page (default 1000). */
  pageKeysMax?: number;
  /** Bytes a Range page aims at; its key limit follows from the largest key-value seen (default 4 MiB). */
  pageBytesTarget?: number;
  /** Most operations per target Txn (default 128, etcd's --max-txn-ops). */
  txnOpsMax?: number;
  /** Most key and value bytes per target Txn; one larger key-value goes alone (default 1 MiB). */
  txnBytesMax?: number;
  /** Target Txns in flight during the copy (default 4). */
  writesInFlightMax?: number;
  /** Lease calls (TimeToLive, grant, keep-alive) in flight at once (default 16). */
  leaseCallsInFlightMax?: number;
  /** Period of the lease sync while mirroring, ms (default 500). */
  leaseSyncMs?: number;
  /** How long a failing target write is retried before the mirror fails, ms (default 60 s). */
  targetRetryMs?: number;
  /** How long `stop()` waits for the watch to reach the source's revision, ms (default 15 s). */
  drainTimeoutMs?: number;
  /** Mismatches listed in the check result (default 20; all are counted). */
  mismatchesListedMax?: number;
  /** Progress lines (a CLI prints them on stderr). */
  onProgress?: (line: string) => void;
}

export type MismatchKind = 'missing_on_target' | 'extra_on_target' | 'value' | 'lease' | 'lease_missing_on_target' | 'lease_extra_on_target';

export interface Mismatch {
  kind: MismatchKind;
  /** The key (printable: JSON text, or 0x… hex for binary keys), or the lease id. */
  key: string;
  detail: string;
}

export interface CheckResult {
  /** Source revision the target was compared with. */
  revision: number;
  /** Keys compared (the union of both sides). */
  keys: number;
  /** Leases compared. */
  leases: number;
  mismatches: number;
  /** The first `mismatchesListedMax` mismatches. */
  first: Mismatch[];
}

export interface MirrorStats {
  /** Source revision of the copy. */
  snapshotRevision: number;
  keysCopied: number;
  /** Leases re-created by the copy. */
  leasesCopied: number;
  /** Watch events applied after the copy, and the source revisions they came in. */
  eventsMirrored: number;
  revisionsMirrored: number;
  /** Leases created and revoked on the target after the copy. */
  leasesGranted: number;
  leasesRevoked: number;
  /** Every source change up to this revision is on the target. */
  appliedThrough: number;
}

interface TrackedLease {
  ttlSeconds: number;
  renewedAt: number;
}

/** One change to make on the target: a key-value to put (with its source lease) or a key to delete. */
interface Change { type: 'put' | 'delete'; kv: KeyValue }

const DEFAULTS = {
  pageKeysMax: 1000, pageBytesTarget: 4 * 1024 * 1024, txnOpsMax: 128, txnBytesMax: 1024 * 1024,
  writesInFlightMax: 4, leaseCallsInFlightMax: 16, leaseSyncMs: 500, targetRetryMs: 60_000,
  drainTimeoutMs: 15_000, mismatchesListedMax: 20,
};

/** Per key-value overhead counted against txnBytesMax besides key and value (tags, lease id). */
const KV_OVERHEAD_BYTES = 32;

export class EtcdMirror {
  private readonly o: Required<Omit<MirrorOptions, 'source' | 'target' | 'prefix' | 'onProgress'>>;
  private readonly source: EtcdClient;
  private readonly target: EtcdClient;
  /** Scope: [start, end); every key is [\0, \0). */
  readonly start: Buffer;
  readonly end: Buffer;
  readonly prefix: Buffer;
  private readonly progress: (line: string) => void;
  private readonly leases = new Map<string, TrackedLease>();
  /** Leases seen ending on the source: later puts attached to them go in without the lease. */
  private readonly ended = new Set<string>();
  private readonly stats: MirrorStats = {
    snapshotRevision: 0, keysCopied: 0, leasesCopied: 0, eventsMirrored: 0, revisionsMirrored: 0,
    leasesGranted: 0, leasesRevoked: 0, appliedThrough: 0,
  };
  private watcher: Watcher | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private lock: Promise<void> = Promise.resolve();
  private failure: MirrorError | undefined;
  private failedListeners: Array<(e: MirrorError) => void> = [];
  private state: 'new' | 'copying' | 'copied' | 'mirroring' | 'stopped' = 'new';
  private readonly reported = new Map<string, number>();
  /** Revision of the last progress answer, and whether events at or below it came after it. */
  private progressAt = 0;
  private lateEvents = false;
  private reportedAt = 0;

  constructor(opts: MirrorOptions) {
    this.source = opts.source;
    this.target = opts.target;
    this.o = {
      force: opts.force ?? false,
      leaseTtl: opts.leaseTtl ?? 'granted',
      pageKeysMax: opts.pageKeysMax ?? DEFAULTS.pageKeysMax,
      pageBytesTarget: opts.pageBytesTarget ?? DEFAULTS.pageBytesTarget,
      txnOpsMax: opts.txnOpsMax ?? DEFAULTS.txnOpsMax,
      txnBytesMax: opts.txnBytesMax ?? DEFAULTS.txnBytesMax,
      writesInFlightMax: opts.writesInFlightMax ?? DEFAULTS.writesInFlightMax,
      leaseCallsInFlightMax: opts.leaseCallsInFlightMax ?? DEFAULTS.leaseCallsInFlightMax,
      leaseSyncMs: opts.leaseSyncMs ?? DEFAULTS.leaseSyncMs,
      targetRetryMs: opts.targetRetryMs ?? DEFAULTS.targetRetryMs,
      drainTimeoutMs: opts.drainTimeoutMs ?? DEFAULTS.drainTimeoutMs,
      mismatchesListedMax: opts.mismatchesListedMax ?? DEFAULTS.mismatchesListedMax,
    };
    for (const [k, v] of Object.entries(this.o)) {
      if (typeof v === 'number' && (!Number.isSafeInteger(v) || v < 1)) throw new MirrorError('failed', `${k} must be a positive integer, got ${v}`);
    }
    if (this.o.txnOpsMax > 10_000) throw new MirrorError('failed', `txnOpsMax ${this.o.txnOpsMax} is beyond any server's limit`);
    this.prefix = toBuffer(opts.prefix ?? '');
    this.start = this.prefix.length ? this.prefix : Buffer.from([0]);
    this.end = this.prefix.length ? prefixEnd(this.prefix) : Buffer.from([0]);
    this.progress = opts.onProgress ?? (() => {});
  }

  /** Counters so far. */
  summary(): MirrorStats { return { ...this.stats }; }

  /** Rejects once the mirror has failed while following the source (never resolves otherwise). */
  failed(): Promise<never> {
    return new Promise<never>((_, reject) => {
      if (this.failure) reject(this.failure);
      else this.failedListeners.push(reject);
    });
  }

  /**
   * Both sides answer, and the target holds nothing in scope (with `force`, what it holds is
   * deleted). Writes nothing unless `force`.
   */
  async preflight(): Promise<{ sourceRevision: number; targetKeys: number }> {
    const src = await this.side('source', () => this.source.range(this.start, { rangeEnd: this.end, countOnly: true }));
    const tgt = await this.side('target', () => this.target.range(this.start, { rangeEnd: this.end, countOnly: true }));
    const shared = this.source.endpoints.filter((e) => this.target.endpoints.includes(e));
    if (shared.length || (src.clusterId === tgt.clusterId && src.memberId === tgt.memberId)) {
      throw new MirrorError('failed', `the source and the target are the same server (${shared[0] ?? `cluster ${src.clusterId}, member ${src.memberId}`}); give the target's own endpoints`);
    }
    if (tgt.count > 0) {
      const where = this.prefix.length ? `under the prefix ${printable(this.prefix)}` : '';
      if (!this.o.force) {
        throw new MirrorError('target_not_empty', `the target holds ${tgt.count} key${tgt.count === 1 ? '' : 's'}${where ? ` ${where}` : ''}; migrate into an empty target, or pass --force to delete them first`);
      }
      const d = await this.side('target', () => this.target.delete(this.start, { rangeEnd: this.end }));
      this.progress(`--force: deleted ${d.deleted} key${d.deleted === 1 ? '' : 's'} on the target${where ? ` ${where}` : ''}`);
    }
    return { sourceRevision: src.revision, targetKeys: tgt.count };
  }

  /**
   * Copies the source as of one revision R: leases first (with their ids), then every key in
   * scope, page by page at revision R. Returns R.
   */
  async copy(): Promise<number> {
    if (this.state !== 'new') throw new MirrorError('failed', 'copy() runs once, first');
    this.state = 'copying';
    const inFlight = new Set<Promise<void>>();
    let firstError: unknown;
    const write = (changes: Change[]): void => {
      const p = this.writeTarget(changes).catch((err: unknown) => { firstError ??= err; }).finally(() => { inFlight.delete(p); });
      inFlight.add(p);
    };
    // Leases granted now are renewed from now on, however long the copy takes.
    this.leaseLoop();
    try {
      // Without a prefix every source lease is in scope, those without keys too.
      if (!this.prefix.length) {
        const ids = await this.side('source', () => this.source.leaseLeases());
        await this.exclusive(() => this.ensureLeases(ids, 'copy'));
      }
      let revision = 0;
      for await (const page of this.scan(this.source, 'source', 0)) {
        if (firstError || this.failure) break;
        revision = page.revision;
        await this.exclusive(() => this.ensureLeases([...new Set(page.kvs.map((kv) => kv.lease).filter((l) => l !== '0'))], 'copy'));
        for (const batch of this.batches(page.kvs.map((kv) => ({ kv, type: 'put' as const })))) {
          while (inFlight.size >= this.o.writesInFlightMax) await Promise.race(inFlight);
          if (firstError) break;
          write(batch);
        }
        this.stats.keysCopied += page.kvs.length;
        this.progress(`copied ${this.stats.keysCopied} keys (source revision ${revision})`);
      }
      await Promise.all(inFlight);
      if (firstError) throw firstError;
      if (this.failure) throw this.failure;
      this.stats.snapshotRevision = revision;
      this.stats.appliedThrough = revision;
      this.state = 'copied';
      return revision;
    } catch (err) {
      this.fail(err);
      throw err;
    }
  }

  /** Follows the source from the copy's revision + 1 until `stop()`. */
  async startMirroring(): Promise<void> {
    if (this.state !== 'copied') throw new MirrorError('failed', 'startMirroring() follows copy()');
    this.state = 'mirroring';
    const from = this.stats.snapshotRevision + 1;
    this.watcher = this.source.watch(this.start, { rangeEnd: this.end, fromRevision: from, pendingBatchesMax: 16 }, {
      onEvents: (events) => this.exclusive(() => this.applyEvents(events)).catch((err: unknown) => this.fail(err)),
      onCompacted: (rev) => {
        this.fail(new MirrorError('compacted', `the source compacted its history to revision ${rev} before the mirror had read it (applied through ${this.stats.appliedThrough}); the target misses changes: run the migration again with --force`));
      },
      onError: (err) => this.report('watch', `source watch: ${err.message}; retrying`),
    });
    let timer: NodeJS.Timeout | undefined;
    const ms = 2 * this.source.callTimeoutMs;
    try {
      await Promise.race([this.watcher.ready, this.failed(), new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new MirrorError('source_unreachable', `the source (${this.source.endpoints.join(',')}) did not start a watch within ${ms} ms`)), ms);
      })]);
    } catch (err) {
      this.fail(err);
      this.watcher.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The periodic lease sync, from the copy until stop(). */
  private leaseLoop(): void {
    this.syncTimer = setTimeout(() => {
      void this.exclusive(() => this.syncLeases()).catch((err: unknown) => this.fail(err)).finally(() => {
        if (!this.failure && (this.state === 'copying' || this.state === 'copied' || this.state === 'mirroring')) this.leaseLoop();
      });
    }, this.o.leaseSyncMs);
  }

  /**
   * Stops following the source once every change up to the source's current revision is on the
   * target (bounded by `drainTimeoutMs`). Returns the revision the target is known to match.
   */
  async stop(): Promise<number> {
    if (this.syncTimer) clearTimeout(this.syncTimer);
    if (this.state === 'copied') {
      this.state = 'stopped';
      await this.exclusive(async () => {});
      if (this.failure) throw this.failure;
      return this.stats.appliedThrough;
    }
    if (this.state !== 'mirroring') return this.stats.appliedThrough;
    this.state = 'stopped';
    const w = this.watcher!;
    try {
      if (!this.failure) {
        await this.exclusive(() => this.syncLeases());
        const s = (await this.side('source', () => this.source.range(this.start, { rangeEnd: this.end, countOnly: true }))).revision;
        await this.drain(w, s);
      }
    } finally {
      w.close();
    }
    await this.exclusive(async () => {});
    if (this.failure) throw this.failure;
    return this.stats.appliedThrough;
  }

  /**
   * Compares the source at `revision` (default: what the mirror applied through) with the
   * target now, key by key (value and lease), then the leases in scope on both sides (after one
   * more lease sync, so leases that ended on the source since are gone on the target too).
   */
  async check(revision = this.stats.appliedThrough): Promise<CheckResult> {
    const result: CheckResult = { revision, keys: 0, leases: 0, mismatches: 0, first: [] };
    const add = (m: Mismatch): void => {
      result.mismatches++;
      if (result.first.length < this.o.mismatchesListedMax) result.first.push(m);
    };
    const sourceLeases = new Set<string>();
    // The mirror has stopped, but the target's leases must not run out while they are compared.
    let renewing = true;
    let renewTimer: NodeJS.Timeout | undefined;
    const renew = (): void => {
      renewTimer = setTimeout(() => {
        void this.exclusive(() => this.renewDue()).catch((err: unknown) => this.fail(err)).finally(() => { if (renewing) renew(); });
      }, this.o.leaseSyncMs);
    };
    renew();
    try {
      result.keys = await this.compareKeys(revision, add, sourceLeases);
    } finally {
      renewing = false;
      clearTimeout(renewTimer);
    }
    if (this.failure) throw this.failure;
    // Leases: the source's in scope now, against the target's.
    await this.exclusive(() => this.syncLeases());
    let inScope: string[];
    if (this.prefix.length) {
      inScope = [];
      await forEachLimited([...new Set([...sourceLeases, ...this.leases.keys()])], this.o.leaseCallsInFlightMax, async (id) => {
        if ((await this.side('source', () => this.source.leaseTimeToLive(id))).ttlSeconds >= 0) inScope.push(id);
      });
    } else {
      inScope = await this.side('source', () => this.source.leaseLeases());
    }
    const onTarget = new Set(await this.side('target', () => this.target.leaseLeases()));
    const scope = new Set(inScope);
    for (const id of scope) {
      result.leases++;
      if (!onTarget.has(id)) add({ kind: 'lease_missing_on_target', key: hexLease(id), detail: 'granted on the source, absent on the target' });
    }
    for (const id of this.leases.keys()) {
      if (scope.has(id) || !onTarget.has(id)) continue;
      result.leases++;
      add({ kind: 'lease_extra_on_target', key: hexLease(id), detail: 'on the target, no longer on the source' });
    }
    return result;
  }

  /**
   * check()'s key-by-key part: the source at `revision` and the target now, merged in key order.
   * Returns how many keys were compared; collects the source's leases in `sourceLeases`.
   */
  private async compareKeys(revision: number, add: (m: Mismatch) => void, sourceLeases: Set<string>): Promise<number> {
    const kvs = async function* (pages: AsyncGenerator<{ kvs: KeyValue[] }>): AsyncGenerator<KeyValue> {
      for await (const page of pages) yield* page.kvs;
    };
    const a = kvs(this.scan(this.source, 'source', revision));
    const b = kvs(this.scan(this.target, 'target', 0));
    const leaseGone = new Map<string, boolean>();
    /** The mirror saw `lease` end on the source, and the source confirms it is gone. */
    const ended = async (lease: string): Promise<boolean> => {
      if (!this.ended.has(lease)) return false;
      if (!leaseGone.has(lease)) leaseGone.set(lease, (await this.side('source', () => this.source.leaseTimeToLive(lease))).ttlSeconds < 0);
      return leaseGone.get(lease) === true;
    };
    let keys = 0;
    let x = await a.next();
    let y = await b.next();
    while (!x.done || !y.done) {
      const cmp = x.done ? 1 : y.done ? -1 : Buffer.compare(x.value.keyBytes, y.value.keyBytes);
      keys++;
      if (cmp < 0) {
        // A key whose lease has ended on the source since `revision` went with it on the target.
        if (!(x.value.lease !== '0' && await ended(x.value.lease))) {
          add({ kind: 'missing_on_target', key: printable(x.value.keyBytes), detail: `on the source at revision ${revision}, not on the target` });
          if (x.value.lease !== '0') sourceLeases.add(x.value.lease);
        }
        x = await a.next();
      } else if (cmp > 0) {
        add({ kind: 'extra_on_target', key: printable(y.value.keyBytes), detail: `on the target, not on the source at revision ${revision}` });
        y = await b.next();
      } else {
        const s = x.value;
        const t = y.value;
        if (s.lease !== '0') sourceLeases.add(s.lease);
        if (!s.value.equals(t.value)) {
          add({ kind: 'value', key: printable(s.keyBytes), detail: `value differs: ${s.value.length} bytes (fnv ${digest(s.value)}) on the source, ${t.value.length} bytes (fnv ${digest(t.value)}) on the target` });
        } else if (s.lease !== t.lease) {
          // A key put without its lease because the lease had ended on the source is doomed
          // there too (its revoke deletes it): not a mismatch once the source confirms the end.
          const ok = t.lease === '0' && await ended(s.lease);
          if (!ok) add({ kind: 'lease', key: printable(s.keyBytes), detail: `lease ${hexLease(s.lease)} on the source, ${t.lease === '0' ? 'none' : hexLease(t.lease)} on the target` });
        }
        x = await a.next();
        y = await b.next();
      }
    }
    return keys;
  }

  // ---- internals ----

  /** Pages of the scope on `client` at `revision` (0: the current one, fixed by the first page). */
  private async *scan(client: EtcdClient, side: 'source' | 'target', revision: number): AsyncGenerator<{ kvs: KeyValue[]; revision: number }> {
    let start = this.start;
    let rev = revision;
    let limit = Math.min(this.o.pageKeysMax, 100);
    for (;;) {
      let page;
      try {
        page = await this.side(side, () => client.range(start, { rangeEnd: this.end, limit, revision: rev }));
      } catch (err) {
        if (err instanceof ConureError && /larger than max|message larger|too large/i.test(err.message) && limit > 1) {
          limit = Math.max(1, Math.floor(limit / 2));
          continue;
        }
        if (err instanceof ConureError && err.code === 'compacted') {
          throw new MirrorError('compacted', `the ${side} compacted revision ${rev} away while it was being read; run again (or pause compaction on it meanwhile)`, { cause: err });
        }
        throw err;
      }
      if (rev === 0) rev = page.revision;
      if (page.kvs.length) yield { kvs: page.kvs, revision: rev };
      if (!page.more || !page.kvs.length) return;
      const last = page.kvs[page.kvs.length - 1]!;
      start = Buffer.concat([last.keyBytes, Buffer.from([0])]);
      const biggest = Math.max(1, ...page.kvs.map((kv) => kv.keyBytes.length + kv.value.length + KV_OVERHEAD_BYTES));
      limit = Math.max(1, Math.min(this.o.pageKeysMax, Math.floor(this.o.pageBytesTarget / biggest)));
    }
  }

  /** Groups changes into target Txns: at most txnOpsMax ops and txnBytesMax bytes (one bigger change alone). */
  private *batches(changes: Change[]): Generator<Change[]> {
    let batch: Change[] = [];
    let bytes = 0;
    for (const c of changes) {
      const size = changeBytes(c);
      if (batch.length && (batch.length >= this.o.txnOpsMax || bytes + size > this.o.txnBytesMax)) {
        yield batch;
        batch = [];
        bytes = 0;
      }
      batch.push(c);
      bytes += size;
    }
    if (batch.length) yield batch;
  }

  /** The target operation for a change; a put keeps its lease only while the mirror holds it. */
  private toOp(c: Change): TxnOp {
    if (c.type === 'delete') return { type: 'delete', key: c.kv.keyBytes };
    const lease = c.kv.lease !== '0' && this.leases.has(c.kv.lease) ? c.kv.lease : '0';
    return { type: 'put', key: c.kv.keyBytes, value: c.kv.value, options: { lease } };
  }

  /**
   * One target Txn of `changes`, retried while the target is unavailable (up to targetRetryMs).
   * The operations are rebuilt on each attempt: a lease revoked meanwhile (it ended on the
   * source) is left out. A lease the target lost while the source holds it fails the mirror.
   */
  private async writeTarget(changes: Change[]): Promise<void> {
    const deadline = Date.now() + this.o.targetRetryMs;
    for (let delay = 100, attempt = 0; ; delay = Math.min(2000, delay * 2), attempt++) {
      const ops = changes.map((c) => this.toOp(c));
      try {
        await this.target.runTxn({ success: ops });
        return;
      } catch (err) {
        const e = err instanceof ConureError ? err : new ConureError('internal', String(err), { cause: err });
        if (e.code === 'not_found' && attempt < 3) {
          // Which lease? Those the mirror still holds: ask the source whether they ended.
          const held = [...new Set(ops.flatMap((o) => (o.type === 'put' && o.options?.lease && o.options.lease !== '0' ? [o.options.lease] : [])))];
          let endedNow = false;
          for (const id of held) {
            if ((await this.side('source', () => this.source.leaseTimeToLive(id))).ttlSeconds < 0) {
              this.leases.delete(id);
              this.ended.add(id);
              endedNow = true;
            }
          }
          if (endedNow || held.some((id) => !this.leases.has(id))) continue;
          throw new MirrorError('lease_lost', `the target refused a write (${e.message}): a lease expired there while the source still holds it (was the target unreachable for longer than its TTL?); run the migration again with --force`, { cause: err });
        }
        if ((e.code !== 'unavailable' && e.code !== 'timeout') || Date.now() + delay > deadline) {
          if (e.code === 'unavailable' || e.code === 'timeout') throw new MirrorError('target_unreachable', `the target (${this.target.endpoints.join(',')}) did not take a write for ${Math.round(this.o.targetRetryMs / 1000)} s: ${e.message}`, { cause: err });
          throw new MirrorError('failed', `the target refused a write: ${e.message}`, { cause: err });
        }
        this.report('target-write', `target write failed (${e.message}); retrying`);
        await sleep(delay);
      }
    }
  }

  /** A progress line of a repeating kind, at most every 5 s. */
  private report(kind: string, line: string): void {
    const now = Date.now();
    if (now - (this.reported.get(kind) ?? 0) < 5000) return;
    this.reported.set(kind, now);
    this.progress(line);
  }

  /**
   * Makes sure each source lease in `ids` exists on the target (same id), unless it has ended
   * on the source (then it is remembered as ended). `phase` 'copy' counts leasesCopied.
   */
  private async ensureLeases(ids: string[], phase: 'copy' | 'mirror'): Promise<void> {
    const todo = ids.filter((id) => !this.leases.has(id) && !this.ended.has(id));
    await forEachLimited(todo, this.o.leaseCallsInFlightMax, async (id) => {
      const ttl = await this.side('source', () => this.source.leaseTimeToLive(id));
      if (ttl.ttlSeconds < 0) { this.ended.add(id); return; }
      const want = Math.max(1, this.o.leaseTtl === 'granted' ? ttl.grantedTtlSeconds : ttl.ttlSeconds);
      let granted;
      try {
        granted = await this.side('target', () => this.target.leaseGrant(want, { id }));
      } catch (err) {
        if (!(err instanceof ConureError) || err.code !== 'conflict') throw err;
        if (!this.o.force) {
          throw new MirrorError('lease_conflict', `the target already has a lease ${hexLease(id)} (${id}), which the source uses; revoke it on the target, or pass --force to have it revoked (with its keys)`, { cause: err });
        }
        await this.side('target', () => this.target.leaseRevoke(id).catch((e: unknown) => { if (!(e instanceof ConureError && e.code === 'not_found')) throw e; }));
        this.progress(`--force: revoked the target's own lease ${hexLease(id)} to re-create the source's`);
        granted = await this.side('target', () => this.target.leaseGrant(want, { id }));
      }
      this.leases.set(id, { ttlSeconds: granted.ttlSeconds, renewedAt: Date.now() });
      if (phase === 'copy') this.stats.leasesCopied++;
      else this.stats.leasesGranted++;
    });
  }

  /**
   * One lease sync: leases gone from the source are revoked on the target; without a prefix,
   * new source leases are granted on the target; target leases due (a third of their TTL since
   * the last renewal) are renewed. A source that does not answer skips the first two (its
   * clients may still be renewing its leases); renewals go on regardless.
   */
  private async syncLeases(): Promise<void> {
    let onSource: Set<string> | undefined;
    try {
      onSource = new Set(await this.source.leaseLeases());
    } catch (err) {
      this.report('lease-sync', `lease sync: the source did not answer (${(err as Error).message}); renewing target leases meanwhile`);
    }
    if (onSource) {
      const gone = [...this.leases.keys()].filter((id) => !onSource!.has(id));
      await forEachLimited(gone, this.o.leaseCallsInFlightMax, async (id) => {
        try {
          await this.target.leaseRevoke(id);
        } catch (err) {
          if (!(err instanceof ConureError && err.code === 'not_found')) throw this.targetError(err);
        }
        this.leases.delete(id);
        this.ended.add(id);
        this.stats.leasesRevoked++;
      });
      if (!this.prefix.length) await this.ensureLeases([...onSource], this.state === 'copying' ? 'copy' : 'mirror');
    }
    await this.renewDue(onSource);
  }

  /**
   * Renews the target leases due (a third of their TTL since the last renewal). A lease gone on
   * the target while the source holds it (or held it at the last look, `onSource`) fails the
   * mirror: its keys are gone there.
   */
  private async renewDue(onSource?: Set<string>): Promise<void> {
    const now = Date.now();
    const due = [...this.leases].filter(([, l]) => now - l.renewedAt >= (l.ttlSeconds * 1000) / 3).map(([id]) => id);
    await forEachLimited(due, this.o.leaseCallsInFlightMax, async (id) => {
      const sent = Date.now();
      let ttl: number;
      try {
        ttl = await this.target.leaseKeepAliveOnce(id);
      } catch (err) {
        this.report('lease-renew', `renewing lease ${hexLease(id)} on the target failed (${(err as Error).message}); retrying`);
        return;
      }
      if (ttl <= 0) {
        // Gone on the target while the source still holds it (or held it at the last look).
        if (onSource && !onSource.has(id)) return;
        throw new MirrorError('lease_lost', `lease ${hexLease(id)} expired on the target while the source still holds it (was the target unreachable for longer than its TTL?); its keys are gone there: run the migration again with --force`);
      }
      const l = this.leases.get(id);
      if (l) l.renewedAt = sent;
    });
  }

  /** Applies one watch batch: whole revisions, in order. */
  private async applyEvents(events: WatchEvent[]): Promise<void> {
    if (this.failure) return;
    for (const ev of events) if (ev.kv.modRevision <= this.progressAt) this.lateEvents = true;
    // Leases new to the mirror (granted on the source after the copy) first.
    const fresh = [...new Set(events.filter((e) => e.type === 'put' && e.kv.lease !== '0').map((e) => e.kv.lease))];
    await this.ensureLeases(fresh, 'mirror');
    // Consecutive revisions whose keys do not overlap share a target Txn, within the limits.
    let ops: Change[] = [];
    let bytes = 0;
    let keys = new Set<string>();
    let revs = 0;
    let lastRev = 0;
    const flush = async (): Promise<void> => {
      if (!ops.length) return;
      await this.writeTarget(ops);
      this.stats.appliedThrough = lastRev;
      this.stats.revisionsMirrored += revs;
      ops = [];
      bytes = 0;
      keys = new Set();
      revs = 0;
    };
    for (let i = 0; i < events.length;) {
      const rev = events[i]!.kv.modRevision;
      let j = i;
      while (j < events.length && events[j]!.kv.modRevision === rev) j++;
      const group = events.slice(i, j);
      i = j;
      const groupBytes = group.reduce((n, e) => n + changeBytes(e), 0);
      const groupKeys = group.map((e) => e.kv.keyBytes.toString('latin1'));
      const overlaps = groupKeys.some((k) => keys.has(k));
      if (ops.length && (overlaps || ops.length + group.length > this.o.txnOpsMax || bytes + groupBytes > this.o.txnBytesMax)) await flush();
      if (group.length > this.o.txnOpsMax || groupBytes > this.o.txnBytesMax) {
        // A revision too large for one Txn (a big DeleteRange or revoke): applied in parts.
        for (const batch of this.batches(group)) await this.writeTarget(batch);
        this.stats.appliedThrough = rev;
        this.stats.revisionsMirrored++;
      } else {
        for (const e of group) ops.push(e);
        for (const k of groupKeys) keys.add(k);
        bytes += groupBytes;
        revs++;
        lastRev = rev;
      }
      this.stats.eventsMirrored += group.length;
    }
    await flush();
    if (Date.now() - this.reportedAt >= 2000) {
      this.reportedAt = Date.now();
      this.progress(`mirrored ${this.stats.eventsMirrored} events (through source revision ${this.stats.appliedThrough})`);
    }
  }

  /**
   * Waits until every source change up to revision `s` is on the target: a watch progress answer
   * at or past `s`, with no event at or below it arriving after it (etcd before 3.4.31 may
   * answer a progress request ahead of events in flight).
   */
  private async drain(w: Watcher, s: number): Promise<void> {
    const deadline = Date.now() + this.o.drainTimeoutMs;
    while (!this.failure) {
      const left = deadline - Date.now();
      if (left <= 0) {
        this.progress(`could not confirm within ${Math.round(this.o.drainTimeoutMs / 1000)} s that the mirror reached source revision ${s}; checking at revision ${this.stats.appliedThrough}`);
        return;
      }
      let p: number;
      try {
        p = await w.requestProgress(Math.min(left, 5000));
      } catch {
        await sleep(200);
        continue;
      }
      this.progressAt = p;
      this.lateEvents = false;
      await sleep(250);
      await this.exclusive(async () => {});
      if (this.lateEvents || w.pendingBatches() > 0) continue;
      if (p >= s) {
        this.stats.appliedThrough = Math.max(this.stats.appliedThrough, p);
        return;
      }
      await sleep(100);
    }
  }

  private fail(err: unknown): void {
    if (this.failure) return;
    this.failure = err instanceof MirrorError ? err : new MirrorError('failed', (err as Error).message ?? String(err), { cause: err });
    if (this.syncTimer) clearTimeout(this.syncTimer);
    for (const l of this.failedListeners) l(this.failure);
    this.failedListeners = [];
  }

  /** Runs `fn` after every earlier exclusive section (events and lease syncs never interleave). */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn);
    this.lock = run.then(() => undefined, () => undefined);
    return run;
  }

  /** Runs a call on one side, naming that side when it cannot be reached. */
  private async side<T>(side: 'source' | 'target', fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw side === 'source' ? this.sourceError(err) : this.targetError(err);
    }
  }

  private sourceError(err: unknown): unknown {
    if (err instanceof ConureError && !(err instanceof MirrorError) && (err.code === 'unavailable' || err.code === 'timeout')) {
      return new MirrorError('source_unreachable', `the source (${this.source.endpoints.join(',')}) did not answer: ${err.message}`, { cause: err });
    }
    return err;
  }

  private targetError(err: unknown): unknown {
    if (err instanceof ConureError && !(err instanceof MirrorError) && (err.code === 'unavailable' || err.code === 'timeout')) {
      return new MirrorError('target_unreachable', `the target (${this.target.endpoints.join(',')}) did not answer: ${err.message}`, { cause: err });
    }
    return err;
  }
}

/** A key for messages: JSON text when it is printable UTF-8, else 0x-hex. */
export function printable(key: Buffer): string {
  const s = key.toString('utf8');
  // eslint-disable-next-line no-control-regex
  if (Buffer.from(s, 'utf8').equals(key) && !/[\u0000-\u001f\u007f\ufffd]/.test(s)) return JSON.stringify(s);
  return `0x${key.toString('hex')}`;
}

/** A lease id as etcdctl prints it (hex). */
export function hexLease(id: string): string {
  return BigInt(id).toString(16);
}

function changeBytes(c: Change): number {
  return c.kv.keyBytes.length + (c.type === 'put' ? c.kv.value.length : 0) + KV_OVERHEAD_BYTES;
}

function digest(b: Buffer): string {
  // Short, dependency-free fingerprint for messages (FNV-1a 32).
  let h = 0x811c9dc5;
  for (const x of b) h = Math.imul(h ^ x, 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs `fn` over `items` with at most `limit` in flight; the first error wins (after the rest settle). */
async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let error: unknown;
  const worker = async (): Promise<void> => {
    while (next < items.length && error === undefined) {
      const item = items[next++]!;
      try { await fn(item); } catch (err) { error ??= err; }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (error !== undefined) throw error;
}
