import { crc32 } from 'node:zlib';
import { pack, unpack } from 'msgpackr';
import type { StateMachine } from '../seams/index.js';
import { decodeUint64, decodeUint64Exact, encodeUint64, type StateOp, type StateStore } from '../storage/index.js';
import { ConureError } from '../util/index.js';
import { MvccError } from './errors.js';
import { KeyIndex } from './key-index.js';
import { OrderedKeys, bytesToKey, keyToBytes, resolveRange, type KeyBounds } from './ordered-keys.js';
import { decodeRevision, encodeRevision, type Revision } from './revision.js';
import { decodeSnapshot, encodeSnapshot } from './snapshot.js';
import type {
  Alarm, AlarmKind, AlarmResult, Compare, CompactResult, DeleteRangeRequest, DeleteRangeResult, KeyValue,
  LeaseGrantResult, LeaseRevokeResult, MvccEvent, PutRequest, PutResult, RangeRequest, RangeResult, RequestOp,
  ResponseOp, TxnRequest, TxnResult, Int64, LeaseId,
} from './types.js';

/** Bucket names in the StateStore. */
export const BUCKETS = {
  /** revision (16 bytes, see revision.ts) → packed row `[key, value, create, version, lease, tombstone]`. */
  key: 'key',
  /** lease id (8 bytes BE) → packed `{ ttl }`. */
  lease: 'lease',
  /** `rev` / `compact` (8 bytes BE), `alarms` (packed Alarm[]). */
  meta: 'mvcc-meta',
} as const;

const META_REV = new TextEncoder().encode('rev');
const META_COMPACT = new TextEncoder().encode('compact');
const META_ALARMS = new TextEncoder().encode('alarms');

/** etcd's maximum lease TTL in seconds. */
export const LEASE_TTL_MAX_SECONDS = 9_000_000_000;

/**
 * Commands the MVCC state machine applies, msgpack-encoded (`encodeCommand`). New fields must be
 * optional so that members of different versions agree.
 */
export type MvccCommand =
  | { t: 'put'; r: PutRequest }
  | { t: 'deleteRange'; r: DeleteRangeRequest }
  | { t: 'txn'; r: TxnRequest }
  | { t: 'compact'; rev: number }
  /**
   * `id` a positive LeaseId (a number below 2^53, a msgpack int64 above), `ttl` at most
   * LEASE_TTL_MAX_SECONDS (checked by MvccService, and again at apply).
   */
  | { t: 'leaseGrant'; id: LeaseId; ttl: number }
  | { t: 'leaseRevoke'; id: LeaseId }
  | { t: 'alarm'; action: 'activate' | 'deactivate'; memberId: string; alarm: AlarmKind };

export function encodeCommand(cmd: MvccCommand): Uint8Array {
  return pack(cmd);
}

/**
 * Observers of applied changes, called synchronously right after the change is in the store
 * (visible to reads, not yet necessarily fsynced). Observers must not throw and must not call
 * back into `apply`.
 */
export interface MvccObserver {
  /** The events of one write transaction, all at revision `revision`, in sub-revision order. */
  events?(revision: number, events: MvccEvent[]): void;
  leaseGranted?(id: LeaseId, ttlSeconds: number): void;
  leaseRevoked?(id: LeaseId): void;
  compacted?(revision: number): void;
}

export interface MvccStateMachineOptions {
  /** Granted TTLs below this are raised to it (etcd: 1.5 × election timeout, rounded up). Default 2. */
  minLeaseTtlSeconds?: number;
  /** Most operations in one Txn, counting each branch separately (etcd: 128). */
  txnOpsMax?: number;
}

interface Lease {
  id: LeaseId;
  ttlSeconds: number;
  /** Keys (latin1 strings, see ordered-keys.ts) currently attached. */
  keys: Set<string>;
}

type Row = [key: Uint8Array, value: Uint8Array, create: number, version: number, lease: LeaseId, tombstone: 0 | 1];

/**
 * etcd's MVCC key-value store as a deterministic StateMachine over a StateStore.
 *
 * ```
 *   apply(index, cmd) ──► WriteTxn ──► StateStore.apply(index, ops)   (one atomic LMDB txn)
 *                           │            key bucket: rev → row, meta: rev/compact, lease bucket
 *                           ├──► KeyIndex per key (in memory, rebuilt on open)
 *                           └──► observers: events (watch hub), leases (lessor)
 * ```
 *
 * Invariants:
 * - One store-wide revision; each Put/DeleteRange/Txn that changes something bumps it once, and
 *   every change inside gets a sub-revision. Read-only Txns and no-op deletes leave it alone.
 * - `apply` never reads clocks or randomness; refused commands return an `MvccError` value and
 *   still advance the applied index.
 * - The in-memory index always mirrors the `key` bucket (rebuilt by `reload()` on open and after
 *   a snapshot install).
 * Ownership: the single apply loop of the Replicator writes; reads (`range`, `kvAt`, `leases`)
 * may run at any time between applies (JavaScript is single-threaded, so they see one state).
 * Errors: `apply` throws only on storage failure (fatal for the member).
 */
export class MvccStateMachine implements StateMachine {
  private readonly index = new Map<string, KeyIndex>();
  private readonly keys = new OrderedKeys();
  private readonly leaseMap = new Map<LeaseId, Lease>();
  private readonly observers = new Set<MvccObserver>();
  private alarmList: Alarm[] = [];
  private rev = 0;
  private compactRev = 0;
  private readonly minLeaseTtlSeconds: number;
  private readonly txnOpsMax: number;

  constructor(private readonly store: StateStore, opts: MvccStateMachineOptions = {}) {
    this.minLeaseTtlSeconds = opts.minLeaseTtlSeconds ?? 2;
    this.txnOpsMax = opts.txnOpsMax ?? 128;
    this.reload();
  }

  /** Rebuilds the in-memory index and lease table from the store (on open, after a restore). */
  reload(): void {
    this.index.clear();
    this.keys.clear();
    this.leaseMap.clear();
    const rev = this.store.get(BUCKETS.meta, META_REV);
    const compact = this.store.get(BUCKETS.meta, META_COMPACT);
    const alarms = this.store.get(BUCKETS.meta, META_ALARMS);
    // etcd's store starts at revision 1 (the empty store), so the first write is revision 2.
    this.rev = rev ? decodeUint64(rev) : 1;
    this.compactRev = compact ? decodeUint64(compact) : 0;
    this.alarmList = alarms ? (unpack(alarms) as Alarm[]) : [];
    for (const { key, value } of this.store.range(BUCKETS.lease)) {
      const { ttl } = unpack(value) as { ttl: number };
      const id = leaseKey(decodeUint64Exact(key));
      this.leaseMap.set(id, { id, ttlSeconds: ttl, keys: new Set() });
    }
    // Rows come in revision order, so each key's history is rebuilt ascending. Batched so a
    // large store is not copied into memory at once.
    const batch = 10_000;
    let start: Uint8Array | undefined;
    for (;;) {
      const rows = this.store.range(BUCKETS.key, start ? { start, limit: batch } : { limit: batch });
      for (const { key: revKey, value } of rows) {
        const rev = decodeRevision(revKey);
        const row = unpackRow(value);
        const k = bytesToKey(row[0]);
        const ki = this.keyIndexFor(k);
        if (row[5]) ki.tombstone(rev);
        else ki.put(rev, row[2], row[3]);
      }
      if (rows.length < batch) break;
      const last = decodeRevision(rows[rows.length - 1]!.key);
      start = encodeRevision(last.main, last.sub + 1);
    }
    for (const [k, ki] of this.index) {
      const live = ki.live();
      if (!live) continue;
      const row = this.readRow(live);
      if (row[4] !== 0) this.leaseMap.get(row[4])?.keys.add(k);
    }
  }

  addObserver(o: MvccObserver): () => void {
    this.observers.add(o);
    return () => this.observers.delete(o);
  }

  // ---- StateMachine ----

  apply(index: number, command: Uint8Array): unknown {
    if (index <= this.store.appliedIndex()) return undefined;
    let cmd: MvccCommand;
    try {
      cmd = unpack(command) as MvccCommand;
    } catch (err) {
      this.store.apply(index, []);
      return new MvccError('invalid', 'undecodable command', { cause: err });
    }
    switch (cmd?.t) {
      case 'put': return this.applyWrite(index, (w) => ({ put: w.put(cmd.r) }), () => this.checkPut(cmd.r), (r) => (r as { put: PutResult }).put);
      case 'deleteRange': return this.applyWrite(index, (w) => ({ deleteRange: w.deleteRange(cmd.r) }), () => this.checkDelete(cmd.r), (r) => (r as { deleteRange: DeleteRangeResult }).deleteRange);
      case 'txn': return this.applyTxn(index, cmd.r);
      case 'compact': return this.applyCompact(index, cmd.rev);
      case 'leaseGrant': return this.applyLeaseGrant(index, cmd.id, cmd.ttl);
      case 'leaseRevoke': return this.applyLeaseRevoke(index, cmd.id);
      case 'alarm': return this.applyAlarm(index, cmd);
      default:
        this.store.apply(index, []);
        return new MvccError('invalid', `unknown command ${JSON.stringify((cmd as { t?: unknown })?.t)}`);
    }
  }

  applyNoop(index: number): void {
    this.store.apply(index, []);
  }

  appliedIndex(): number { return this.store.appliedIndex(); }
  sync(): Promise<void> { return this.store.sync(); }

  /**
   * Group commit: the `apply` calls `fn` makes share one storage transaction (one commit, one
   * fsync). Observers still run after each apply; a failing batch is a storage failure, which is
   * fatal for the member, so they never see a change that is later undone by a live member.
   */
  batch<T>(fn: () => T): T {
    return this.store.batch(fn);
  }

  /** The whole state (every bucket) for a raft snapshot, taken synchronously, so consistent. */
  exportState(): { index: number; data: Uint8Array } {
    return { index: this.store.appliedIndex(), data: encodeSnapshot(this.store) };
  }

  /** Installs a state produced by `exportState` (or a Maintenance snapshot) and rebuilds the index. */
  async restoreState(index: number, data: Uint8Array): Promise<void> {
    const snap = decodeSnapshot(data);
    await this.store.restore(index, snap.data);
    this.reload();
  }

  // ---- reads ----

  /** The current (latest) revision. */
  currentRevision(): number { return this.rev; }
  /** Revisions below this have been compacted away. */
  compactedRevision(): number { return this.compactRev; }
  alarms(): Alarm[] { return this.alarmList.map((a) => ({ ...a })); }

  /**
   * A range read against the current state (or `req.revision`). Errors (as thrown MvccError):
   * `compacted` when the revision is below the compacted revision, `future_revision` when ahead.
   */
  range(req: RangeRequest): RangeResult {
    return this.rangeIn(req, undefined);
  }

  /**
   * Like `range`, but hands each key/value to `visit` in result order instead of collecting
   * them, so a caller can encode a large result as it goes (memory ~ the encoded response). A
   * sorted or filtered range still collects first (sorting needs every row). `visit` may throw
   * (e.g. a response size limit) to stop the read. Same errors as `range`.
   */
  rangeEach(req: RangeRequest, visit: (kv: KeyValue) => void): Omit<RangeResult, 'kvs'> {
    return this.rangeEachIn(req, undefined, visit);
  }

  /** The key/value that `rev` wrote, or undefined for a tombstone or a compacted row. */
  kvAt(rev: Revision): KeyValue | undefined {
    const raw = this.store.get(BUCKETS.key, encodeRevision(rev.main, rev.sub));
    if (!raw) return undefined;
    const row = unpackRow(raw);
    return row[5] ? undefined : rowToKv(row, rev.main);
  }

  /**
   * Events of revisions `[fromRev, toRev]` in order, for watchers catching up. A batch holds whole
   * revisions only: at most `eventsMax` events, unless the first revision alone has more (then
   * that revision is returned whole). `nextRev` is where the next batch starts (> toRev when done).
   * Callers check `fromRev` against `compactedRevision()` first: compacted rows are simply absent.
   */
  history(fromRev: number, toRev: number, eventsMax: number): { events: MvccEvent[]; nextRev: number } {
    const end = encodeRevision(toRev + 1, 0);
    let rows = this.store.range(BUCKETS.key, { start: encodeRevision(fromRev, 0), end, limit: eventsMax + 1 });
    let nextRev = toRev + 1;
    if (rows.length > eventsMax) {
      const cut = decodeRevision(rows[eventsMax]!.key).main;
      const whole = rows.findIndex((r) => decodeRevision(r.key).main === cut);
      if (whole > 0) {
        rows = rows.slice(0, whole);
        nextRev = cut;
      } else {
        rows = this.store.range(BUCKETS.key, { start: encodeRevision(cut, 0), end: encodeRevision(cut + 1, 0) });
        nextRev = cut + 1;
      }
    }
    const events: MvccEvent[] = [];
    for (const r of rows) {
      const rev = decodeRevision(r.key);
      const row = unpackRow(r.value);
      const prev = this.index.get(bytesToKey(row[0]))?.before(rev);
      const ev: MvccEvent = row[5]
        ? { type: 'delete', kv: { key: row[0], createRevision: 0, modRevision: rev.main, version: 0, value: new Uint8Array(0), lease: 0 } }
        : { type: 'put', kv: rowToKv(row, rev.main) };
      if (prev) ev.prev = { main: prev.main, sub: prev.sub };
      events.push(ev);
    }
    return { events, nextRev };
  }

  /**
   * Like `history`, for one key: its events in `[fromRev, toRev]`, found through the key index
   * rather than by scanning every revision, so a single-key watcher catches up in time
   * proportional to that key's history. At most `eventsMax` events per call.
   */
  keyHistory(key: Uint8Array, fromRev: number, toRev: number, eventsMax: number): { events: MvccEvent[]; nextRev: number } {
    const ki = this.index.get(bytesToKey(key));
    const events: MvccEvent[] = [];
    if (!ki) return { events, nextRev: toRev + 1 };
    for (let i = 0; i < ki.revs.length; i++) {
      const r = ki.revs[i]!;
      if (r.main < fromRev) continue;
      if (r.main > toRev) break;
      if (events.length >= eventsMax) return { events, nextRev: r.main };
      const prev = i > 0 && !ki.revs[i - 1]!.tombstone ? ki.revs[i - 1]! : undefined;
      const ev: MvccEvent = r.tombstone
        ? { type: 'delete', kv: { key, createRevision: 0, modRevision: r.main, version: 0, value: new Uint8Array(0), lease: 0 } }
        : { type: 'put', kv: this.kvFromRow(r, undefined) };
      if (prev) ev.prev = { main: prev.main, sub: prev.sub };
      events.push(ev);
    }
    return { events, nextRev: toRev + 1 };
  }

  /**
   * Evaluates a Txn whose branches only read (no Put/DeleteRange anywhere), without a proposal.
   * Throws MvccError for invalid requests and compacted/future revisions.
   */
  txnReadOnly(req: TxnRequest): TxnResult {
    const err = this.checkTxn(req, 0);
    if (err) throw err;
    const path = this.txnPath(req);
    const invalid = this.checkPath(req, path);
    if (invalid) throw invalid;
    const result = new WriteTxn(this).txn(req, path);
    fillRevision(result, this.rev);
    return result;
  }

  /** Lease ids currently granted, ascending. */
  leases(): LeaseId[] { return [...this.leaseMap.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)); }

  /** A lease's granted TTL and attached keys, or undefined if it does not exist. */
  lease(id: Int64): { ttlSeconds: number; keys: Uint8Array[] } | undefined {
    const l = this.leaseEntry(id);
    if (!l) return undefined;
    return { ttlSeconds: l.ttlSeconds, keys: [...l.keys].sort().map(keyToBytes) };
  }

  /** Number of live keys (for metrics and tests). */
  keyCount(): number {
    let n = 0;
    for (const ki of this.index.values()) if (ki.live()) n++;
    return n;
  }

  /**
   * etcd's HashKV: a CRC-32 over every stored row (key and value) with main revision in
   * `(compacted-history, rev]`; `rev` 0 means current. Equal stores give equal hashes.
   */
  hashKv(revision: Int64): { hash: number; revision: number; compactRevision: number } {
    const asked = BigInt(revision);
    if (asked > BigInt(this.rev)) throw new MvccError('future_revision', `revision ${asked} is ahead of the current revision ${this.rev}`);
    const rev = Number(asked);
    const upto = rev <= 0 ? this.rev : rev;
    if (upto > this.rev) throw new MvccError('future_revision', `revision ${upto} is ahead of the current revision ${this.rev}`);
    if (upto < this.compactRev) throw new MvccError('compacted', `revision ${upto} has been compacted`, { compactRevision: this.compactRev });
    let hash = 0;
    let start = encodeRevision(0, 0);
    const end = encodeRevision(upto + 1, 0);
    for (;;) {
      const rows = this.store.range(BUCKETS.key, { start, end, limit: 10_000 });
      for (const r of rows) hash = crc32(r.value, crc32(r.key, hash));
      if (rows.length < 10_000) break;
      const last = decodeRevision(rows[rows.length - 1]!.key);
      start = encodeRevision(last.main, last.sub + 1);
    }
    return { hash: hash >>> 0, revision: this.rev, compactRevision: this.compactRev };
  }

  // ---- apply paths ----

  private applyWrite(
    index: number,
    run: (w: WriteTxn) => ResponseOp,
    check: () => MvccError | undefined,
    unwrap: (r: ResponseOp) => unknown,
  ): unknown {
    const err = check();
    if (err) {
      this.store.apply(index, []);
      return err;
    }
    const w = new WriteTxn(this);
    const resp = run(w);
    this.commit(index, w);
    const out = unwrap(resp) as { revision: number };
    out.revision = this.rev;
    return out;
  }

  private applyTxn(index: number, req: TxnRequest): unknown {
    const err = this.checkTxn(req, 0);
    if (err) {
      this.store.apply(index, []);
      return err;
    }
    // Decide every branch (nested ones too) against the state before the txn, as etcd does.
    const path = this.txnPath(req);
    const invalid = this.checkPath(req, path);
    if (invalid) {
      this.store.apply(index, []);
      return invalid;
    }
    const w = new WriteTxn(this);
    const result = w.txn(req, path);
    this.commit(index, w);
    fillRevision(result, this.rev);
    return result;
  }

  private applyCompact(index: number, rev: number): unknown {
    if (rev <= this.compactRev) {
      this.store.apply(index, []);
      return new MvccError('compacted', `revision ${rev} has already been compacted (compacted revision ${this.compactRev})`, { compactRevision: this.compactRev });
    }
    if (rev > this.rev) {
      this.store.apply(index, []);
      return new MvccError('future_revision', `cannot compact at ${rev}: the current revision is ${this.rev}`);
    }
    const ops: StateOp[] = [];
    for (const [k, ki] of this.index) {
      for (const r of ki.compact(rev)) ops.push({ op: 'del', bucket: BUCKETS.key, key: encodeRevision(r.main, r.sub) });
      if (ki.revs.length === 0) {
        this.index.delete(k);
        this.keys.delete(k);
      }
    }
    ops.push({ op: 'put', bucket: BUCKETS.meta, key: META_COMPACT, value: encodeUint64(rev) });
    this.store.apply(index, ops);
    this.compactRev = rev;
    this.notify((o) => o.compacted?.(rev));
    return { revision: this.rev } satisfies CompactResult;
  }

  private applyLeaseGrant(index: number, asked: LeaseId, ttl: number): unknown {
    const id = leaseKey(asked);
    if (!(id > 0)) {
      this.store.apply(index, []);
      return new MvccError('invalid', `lease id ${asked} is not a positive int64`);
    }
    if (this.leaseMap.has(id)) {
      this.store.apply(index, []);
      return new MvccError('lease_exists', `lease ${id} already exists`);
    }
    if (ttl > LEASE_TTL_MAX_SECONDS) {
      this.store.apply(index, []);
      return new MvccError('lease_ttl_too_large', `lease TTL ${ttl} exceeds ${LEASE_TTL_MAX_SECONDS}`);
    }
    const ttlSeconds = Math.max(ttl, this.minLeaseTtlSeconds);
    this.store.apply(index, [{ op: 'put', bucket: BUCKETS.lease, key: encodeUint64(id), value: pack({ ttl: ttlSeconds }) }]);
    this.leaseMap.set(id, { id, ttlSeconds, keys: new Set() });
    this.notify((o) => o.leaseGranted?.(id, ttlSeconds));
    return { revision: this.rev, id, ttlSeconds } satisfies LeaseGrantResult;
  }

  private applyLeaseRevoke(index: number, asked: LeaseId): unknown {
    const id = leaseKey(asked);
    const lease = this.leaseMap.get(id);
    if (!lease) {
      this.store.apply(index, []);
      return new MvccError('lease_not_found', `lease ${id} not found`);
    }
    const w = new WriteTxn(this);
    for (const k of [...lease.keys].sort()) w.deleteKey(k, false);
    w.ops.push({ op: 'del', bucket: BUCKETS.lease, key: encodeUint64(id) });
    this.leaseMap.delete(id);
    this.commit(index, w);
    this.notify((o) => o.leaseRevoked?.(id));
    return { revision: this.rev } satisfies LeaseRevokeResult;
  }

  private applyAlarm(index: number, cmd: Extract<MvccCommand, { t: 'alarm' }>): unknown {
    const has = this.alarmList.some((a) => a.memberId === cmd.memberId && a.alarm === cmd.alarm);
    let changed: Alarm[] = [];
    if (cmd.action === 'activate' && !has) {
      this.alarmList = [...this.alarmList, { memberId: cmd.memberId, alarm: cmd.alarm }];
      changed = [{ memberId: cmd.memberId, alarm: cmd.alarm }];
    } else if (cmd.action === 'deactivate' && has) {
      this.alarmList = this.alarmList.filter((a) => !(a.memberId === cmd.memberId && a.alarm === cmd.alarm));
      changed = [{ memberId: cmd.memberId, alarm: cmd.alarm }];
    }
    this.store.apply(index, [{ op: 'put', bucket: BUCKETS.meta, key: META_ALARMS, value: pack(this.alarmList) }]);
    return { revision: this.rev, alarms: changed } satisfies AlarmResult;
  }

  private commit(index: number, w: WriteTxn): void {
    if (w.changed) w.ops.push({ op: 'put', bucket: BUCKETS.meta, key: META_REV, value: encodeUint64(w.rev) });
    this.store.apply(index, w.ops);
    if (!w.changed) return;
    this.rev = w.rev;
    this.notify((o) => o.events?.(w.rev, w.events));
  }

  /** Calls every observer; one that throws is skipped so it cannot break apply on this member. */
  private notify(fn: (o: MvccObserver) => void): void {
    for (const o of this.observers) {
      try {
        fn(o);
      } catch {
        // Observers are documented not to throw; apply's outcome must not depend on them.
      }
    }
  }

  // ---- validation (against the state before the command) ----

  private checkPut(r: PutRequest): MvccError | undefined {
    if (!r.key || r.key.length === 0) return new MvccError('empty_key', 'key is not provided');
    if (r.ignoreValue && r.value && r.value.length > 0) return new MvccError('value_provided', 'value is provided with ignore_value');
    if (r.ignoreLease && r.lease) return new MvccError('lease_provided', 'lease is provided with ignore_lease');
    const k = bytesToKey(r.key);
    if ((r.ignoreValue || r.ignoreLease) && !this.index.get(k)?.live()) return new MvccError('key_not_found', 'key not found');
    if (r.lease && !this.leaseEntry(r.lease)) return new MvccError('lease_not_found', `lease ${r.lease} not found`);
    return undefined;
  }

  private checkDelete(r: DeleteRangeRequest): MvccError | undefined {
    if (!r.key || r.key.length === 0) return new MvccError('empty_key', 'key is not provided');
    return undefined;
  }

  /** Static checks: op counts and the rule that a txn branch may not write a key twice. */
  private checkTxn(req: TxnRequest, depth: number): MvccError | undefined {
    if (depth > 16) return new MvccError('invalid', 'txn nesting deeper than 16');
    if (req.compare.length > this.txnOpsMax || req.success.length > this.txnOpsMax || req.failure.length > this.txnOpsMax) {
      return new MvccError('too_many_ops', `a txn branch has more than ${this.txnOpsMax} operations`);
    }
    for (const c of req.compare) if (!c.key || c.key.length === 0) return new MvccError('empty_key', 'key is not provided');
    for (const branch of [req.success, req.failure]) {
      for (const op of branch) {
        if ('txn' in op) {
          const e = this.checkTxn(op.txn, depth + 1);
          if (e) return e;
        } else if ('range' in op) {
          if (!op.range.key || op.range.key.length === 0) return new MvccError('empty_key', 'key is not provided');
        } else if ('put' in op) {
          if (!op.put.key || op.put.key.length === 0) return new MvccError('empty_key', 'key is not provided');
        } else if ('deleteRange' in op) {
          if (!op.deleteRange.key || op.deleteRange.key.length === 0) return new MvccError('empty_key', 'key is not provided');
        }
      }
      const dup = checkDuplicates(branch);
      if (dup) return dup;
    }
    return undefined;
  }

  /** The branch taken at each txn, depth-first: `true` = success. */
  private txnPath(req: TxnRequest): boolean[] {
    const path: boolean[] = [];
    const walk = (t: TxnRequest): void => {
      const ok = t.compare.every((c) => this.compare(c));
      path.push(ok);
      for (const op of ok ? t.success : t.failure) if ('txn' in op) walk(op.txn);
    };
    walk(req);
    return path;
  }

  private checkPath(req: TxnRequest, path: boolean[]): MvccError | undefined {
    let i = 0;
    const walk = (t: TxnRequest): MvccError | undefined => {
      const ok = path[i++]!;
      for (const op of ok ? t.success : t.failure) {
        if ('txn' in op) {
          const e = walk(op.txn);
          if (e) return e;
        } else if ('put' in op) {
          const e = this.checkPut(op.put);
          if (e) return e;
        } else if ('range' in op) {
          const e = this.checkRangeRevision(op.range.revision ?? 0);
          if (e) return e;
        }
      }
      return undefined;
    };
    return walk(req);
  }

  private compare(c: Compare): boolean {
    const bounds = resolveRange(c.key, c.rangeEnd);
    const kvs = this.liveKvs(bounds, this.rev, undefined);
    if (kvs.length === 0) {
      if (c.target === 'value') return false;
      return compareOne(c, { key: c.key, createRevision: 0, modRevision: 0, version: 0, value: new Uint8Array(0), lease: 0 });
    }
    return kvs.every((kv) => compareOne(c, kv));
  }

  /**
   * etcd's rangeKeys checks, compared as bigints before anything is converted: above the current
   * revision is a future revision, ≤ 0 means the current one, below the compacted one is compacted.
   */
  private checkRangeRevision(revision: Int64): MvccError | undefined {
    if (BigInt(revision) > BigInt(this.rev)) return new MvccError('future_revision', `revision ${revision} is ahead of the current revision ${this.rev}`);
    const rev = Number(revision);
    if (rev > 0 && rev < this.compactRev) return new MvccError('compacted', `revision ${rev} has been compacted (compacted revision ${this.compactRev})`, { compactRevision: this.compactRev });
    return undefined;
  }

  // ---- helpers used by WriteTxn ----

  /** @internal */
  rangeIn(req: RangeRequest, pending: Map<string, Row> | undefined): RangeResult {
    const kvs: KeyValue[] = [];
    const r = this.rangeEachIn(req, pending, (kv) => { kvs.push(kv); });
    return { ...r, kvs };
  }

  /** @internal */
  rangeEachIn(req: RangeRequest, pending: Map<string, Row> | undefined, visit: (kv: KeyValue) => void): Omit<RangeResult, 'kvs'> {
    const revErr = this.checkRangeRevision(req.revision ?? 0);
    if (revErr) throw revErr;
    const asked = Number(req.revision ?? 0); // fits: checkRangeRevision bounded it by this.rev
    const atRev = asked > 0 ? asked : pending ? this.rev + 1 : this.rev;
    const bounds = resolveRange(req.key, req.rangeEnd);
    const sortOrder = req.sortOrder === 'none' || req.sortOrder === undefined
      ? (req.sortTarget && req.sortTarget !== 'key' ? 'ascend' : 'none')
      : req.sortOrder;
    const filtered = !!(req.minModRevision || req.maxModRevision || req.minCreateRevision || req.maxCreateRevision);
    const limit = req.limit && req.limit > 0 ? req.limit : 0;
    const revs = this.liveRevisions(bounds, atRev);
    const count = revs.length;
    if (req.countOnly) return { revision: this.rev, more: false, count };
    const out = (kv: KeyValue): void => {
      if (req.keysOnly) kv.value = new Uint8Array(0);
      visit(kv);
    };
    if (sortOrder === 'none' && !filtered) {
      // Streamed: one row at a time, only `limit` of them.
      const n = limit > 0 ? Math.min(limit, revs.length) : revs.length;
      for (let i = 0; i < n; i++) out(this.kvFromRow(revs[i]!, pending));
      return { revision: this.rev, more: n < revs.length, count };
    }
    let kvs = revs.map((r) => this.kvFromRow(r, pending));
    if (filtered) {
      kvs = kvs.filter((kv) =>
        (!req.minModRevision || kv.modRevision >= req.minModRevision) &&
        (!req.maxModRevision || kv.modRevision <= req.maxModRevision) &&
        (!req.minCreateRevision || kv.createRevision >= req.minCreateRevision) &&
        (!req.maxCreateRevision || kv.createRevision <= req.maxCreateRevision));
    }
    if (sortOrder !== 'none') sortKvs(kvs, req.sortTarget ?? 'key', sortOrder);
    let more = false;
    if (limit > 0 && kvs.length > limit) {
      kvs = kvs.slice(0, limit);
      more = true;
    }
    for (const kv of kvs) out(kv);
    return { revision: this.rev, more, count };
  }

  /** @internal Revisions of the keys in `bounds` that exist at `atRev`, in key order. */
  liveRevisions(bounds: KeyBounds, atRev: number): Revision[] {
    const out: Revision[] = [];
    for (const k of this.keys.range(bounds)) {
      const r = this.index.get(k)!.at(atRev);
      if (r) out.push(r);
    }
    return out;
  }

  /** @internal */
  liveKvs(bounds: KeyBounds, atRev: number, pending: Map<string, Row> | undefined): KeyValue[] {
    return this.liveRevisions(bounds, atRev).map((r) => this.kvFromRow(r, pending));
  }

  /** @internal */
  kvFromRow(rev: Revision, pending: Map<string, Row> | undefined): KeyValue {
    return rowToKv(this.readRow(rev, pending), rev.main);
  }

  /** @internal */
  readRow(rev: Revision, pending?: Map<string, Row>): Row {
    const revKey = encodeRevision(rev.main, rev.sub);
    const p = pending?.get(bytesToKey(revKey));
    if (p) return p;
    const raw = this.store.get(BUCKETS.key, revKey);
    if (!raw) throw new ConureError('internal', `index points at missing revision ${rev.main}.${rev.sub}`);
    return unpackRow(raw);
  }

  /** @internal */
  keyIndexFor(k: string): KeyIndex {
    let ki = this.index.get(k);
    if (!ki) {
      ki = new KeyIndex();
      this.index.set(k, ki);
      this.keys.add(k);
    }
    return ki;
  }

  /** @internal */
  existing(k: string): KeyIndex | undefined { return this.index.get(k); }
  /** @internal */
  leaseEntry(id: Int64): Lease | undefined { return this.leaseMap.get(leaseKey(id)); }
  /** @internal */
  keysIn(bounds: KeyBounds): string[] { return [...this.keys.range(bounds)]; }
}

/**
 * The changes of one write transaction, applied to the in-memory index as they are made (so
 * later ops in a Txn read earlier ones) and flushed to the store in one `StateStore.apply`.
 * Validation happens before a WriteTxn starts, so its methods cannot fail half-way.
 */
class WriteTxn {
  readonly rev: number;
  private sub = 0;
  readonly ops: StateOp[] = [];
  readonly events: MvccEvent[] = [];
  private readonly pending = new Map<string, Row>();

  constructor(private readonly sm: MvccStateMachine) {
    this.rev = sm.currentRevision() + 1;
  }

  get changed(): boolean { return this.sub > 0; }

  put(r: PutRequest): PutResult {
    const k = bytesToKey(r.key);
    const ki = this.sm.existing(k);
    const prevRev = ki?.live();
    const prevRow = prevRev ? this.sm.readRow(prevRev, this.pending) : undefined;
    const value = r.ignoreValue ? prevRow![1] : r.value ?? new Uint8Array(0);
    // checkPut found the lease, so a non-zero id is a granted one (in canonical form).
    const lease = r.ignoreLease ? prevRow![4] : leaseKey(r.lease ?? 0);
    const create = prevRow ? prevRow[2] : this.rev;
    const version = prevRow ? prevRow[3] + 1 : 1;
    const rev = { main: this.rev, sub: this.sub++ };
    const row: Row = [r.key, value, create, version, lease, 0];
    this.write(rev, row);
    this.sm.keyIndexFor(k).put(rev, create, version);
    if (prevRow && prevRow[4] !== 0) this.sm.leaseEntry(prevRow[4])?.keys.delete(k);
    if (lease !== 0) this.sm.leaseEntry(lease)?.keys.add(k);
    const ev: MvccEvent = { type: 'put', kv: rowToKv(row, this.rev) };
    if (prevRev) ev.prev = { main: prevRev.main, sub: prevRev.sub };
    this.events.push(ev);
    const out: PutResult = { revision: 0 };
    if (r.prevKv && prevRow && prevRev) out.prevKv = rowToKv(prevRow, prevRev.main);
    return out;
  }

  deleteRange(r: DeleteRangeRequest): DeleteRangeResult {
    const bounds = resolveRange(r.key, r.rangeEnd);
    const prevKvs: KeyValue[] = [];
    let deleted = 0;
    for (const k of this.sm.keysIn(bounds)) {
      const prev = this.deleteKey(k, !!r.prevKv);
      if (prev === undefined) continue;
      deleted++;
      if (prev) prevKvs.push(prev);
    }
    return { revision: 0, deleted, prevKvs };
  }

  /** Tombstones `k` if it exists; returns its previous kv (or null when not asked), undefined if absent. */
  deleteKey(k: string, wantPrev: boolean): KeyValue | null | undefined {
    const ki = this.sm.existing(k);
    const prevRev = ki?.live();
    if (!ki || !prevRev) return undefined;
    const prevRow = this.sm.readRow(prevRev, this.pending);
    const rev = { main: this.rev, sub: this.sub++ };
    const keyBytes = prevRow[0];
    this.write(rev, [keyBytes, new Uint8Array(0), 0, 0, 0, 1]);
    ki.tombstone(rev);
    if (prevRow[4] !== 0) this.sm.leaseEntry(prevRow[4])?.keys.delete(k);
    this.events.push({
      type: 'delete',
      kv: { key: keyBytes, createRevision: 0, modRevision: this.rev, version: 0, value: new Uint8Array(0), lease: 0 },
      prev: { main: prevRev.main, sub: prevRev.sub },
    });
    return wantPrev ? rowToKv(prevRow, prevRev.main) : null;
  }

  txn(req: TxnRequest, path: boolean[]): TxnResult {
    let i = 0;
    const run = (t: TxnRequest): TxnResult => {
      const ok = path[i++]!;
      const responses: ResponseOp[] = [];
      for (const op of ok ? t.success : t.failure) responses.push(this.op(op, run));
      return { revision: 0, succeeded: ok, responses };
    };
    return run(req);
  }

  private op(op: RequestOp, run: (t: TxnRequest) => TxnResult): ResponseOp {
    if ('range' in op) return { range: this.sm.rangeIn(op.range, this.changed ? this.pending : undefined) };
    if ('put' in op) return { put: this.put(op.put) };
    if ('deleteRange' in op) return { deleteRange: this.deleteRange(op.deleteRange) };
    return { txn: run(op.txn) };
  }

  private write(rev: Revision, row: Row): void {
    const revKey = encodeRevision(rev.main, rev.sub);
    this.pending.set(bytesToKey(revKey), row);
    this.ops.push({ op: 'put', bucket: BUCKETS.key, key: revKey, value: pack(row) });
  }
}

function rowToKv(row: Row, modRevision: number): KeyValue {
  return { key: row[0], createRevision: row[2], modRevision, version: row[3], value: row[1], lease: row[4] };
}

const INT64_MAX = 2n ** 63n - 1n;
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * A lease id in the canonical form the store keys leases by (LeaseId): 0, a positive safe
 * integer as a number, [2^53, 2^63 − 1] as a bigint. An id no lease can have (negative, beyond
 * int64, not an integer) becomes NaN, which matches nothing and is not `> 0`.
 */
export function leaseKey(id: Int64): LeaseId {
  if (typeof id !== 'number' && typeof id !== 'bigint') return Number.NaN;
  if (typeof id === 'number') return Number.isSafeInteger(id) && id >= 0 ? id : Number.NaN;
  if (id === 0n) return 0;
  if (id < 0n || id > INT64_MAX) return Number.NaN;
  return id <= SAFE_MAX ? Number(id) : id;
}

/** One stored revision of a key, as an import (an etcd snapshot) hands it over. */
export interface ImportedRow {
  main: number;
  sub: number;
  key: Uint8Array;
  /** For a put: */
  value: Uint8Array;
  createRevision: number;
  version: number;
  lease: Int64;
  /** A delete (the other fields are ignored). */
  tombstone: boolean;
}

/**
 * The buckets of a store that holds exactly `rows` (ascending by revision), `leases` and the
 * given current and compacted revisions, for `StateStore.restore` (`conurectl snapshot
 * import-etcd`). Revisions are kept as given. Errors: MvccError('invalid') for rows out of
 * order, ids no lease can have, a TTL or a revision out of range.
 */
export function importedState(rows: Iterable<ImportedRow>, leases: Iterable<{ id: Int64; ttlSeconds: number }>, revision: number, compactRevision: number): Map<string, Array<{ key: Uint8Array; value: Uint8Array }>> {
  const keyRows: Array<{ key: Uint8Array; value: Uint8Array }> = [];
  let last: Revision | undefined;
  let maxMain = 0;
  for (const r of rows) {
    if (!Number.isSafeInteger(r.main) || !Number.isSafeInteger(r.sub) || r.main < 1 || r.sub < 0) throw new MvccError('invalid', `revision ${r.main}.${r.sub} is out of range`);
    if (last && (r.main < last.main || (r.main === last.main && r.sub <= last.sub))) throw new MvccError('invalid', `revision ${r.main}.${r.sub} follows ${last.main}.${last.sub}`);
    last = { main: r.main, sub: r.sub };
    maxMain = r.main;
    if (!r.key.length) throw new MvccError('invalid', `revision ${r.main}.${r.sub} has an empty key`);
    let row: Row;
    if (r.tombstone) {
      row = [r.key, new Uint8Array(0), 0, 0, 0, 1];
    } else {
      const lease = leaseKey(r.lease);
      if (Number.isNaN(lease)) throw new MvccError('invalid', `revision ${r.main}.${r.sub} names lease ${r.lease}, which no lease can be`);
      if (!Number.isSafeInteger(r.createRevision) || r.createRevision < 1 || r.createRevision > r.main || !Number.isSafeInteger(r.version) || r.version < 1) {
        throw new MvccError('invalid', `revision ${r.main}.${r.sub}: create revision ${r.createRevision} or version ${r.version} is out of range`);
      }
      row = [r.key, r.value, r.createRevision, r.version, lease, 0];
    }
    keyRows.push({ key: encodeRevision(r.main, r.sub), value: pack(row) });
  }
  const leaseRows: Array<{ key: Uint8Array; value: Uint8Array }> = [];
  const ids = new Set<LeaseId>();
  for (const l of leases) {
    const id = leaseKey(l.id);
    if (!(id > 0)) throw new MvccError('invalid', `lease id ${l.id} is not a positive int64`);
    if (ids.has(id)) throw new MvccError('invalid', `lease ${l.id} appears twice`);
    ids.add(id);
    if (!Number.isSafeInteger(l.ttlSeconds) || l.ttlSeconds < 1 || l.ttlSeconds > LEASE_TTL_MAX_SECONDS) throw new MvccError('invalid', `lease ${l.id} has TTL ${l.ttlSeconds}`);
    leaseRows.push({ key: encodeUint64(id), value: pack({ ttl: l.ttlSeconds }) });
  }
  if (!Number.isSafeInteger(revision) || revision < Math.max(1, maxMain)) throw new MvccError('invalid', `current revision ${revision} is below the rows' ${maxMain}`);
  if (!Number.isSafeInteger(compactRevision) || compactRevision < 0 || compactRevision > revision) throw new MvccError('invalid', `compacted revision ${compactRevision} is out of range`);
  const meta = [{ key: META_REV, value: encodeUint64(revision) }];
  if (compactRevision > 0) meta.push({ key: META_COMPACT, value: encodeUint64(compactRevision) });
  return new Map([[BUCKETS.key, keyRows], [BUCKETS.lease, leaseRows], [BUCKETS.meta, meta]]);
}

/** A stored row, its lease id put in canonical form (msgpack gives int64s back as bigints). */
function unpackRow(raw: Uint8Array): Row {
  const row = unpack(raw) as Row;
  if (typeof row[4] === 'bigint') row[4] = leaseKey(row[4]);
  return row;
}

function compareOne(c: Compare, kv: KeyValue): boolean {
  let d: number;
  if (c.target === 'value') {
    const operand = c.operand instanceof Uint8Array ? c.operand : new Uint8Array(0);
    d = Buffer.compare(kv.value, operand);
  } else {
    const v = c.target === 'version' ? kv.version : c.target === 'create' ? kv.createRevision : c.target === 'mod' ? kv.modRevision : kv.lease;
    // int64 operands compare exactly, as bigints (a mod revision < 2^60 is true, not -1's answer).
    const operand = typeof c.operand === 'number' || typeof c.operand === 'bigint' ? BigInt(c.operand) : 0n;
    const x = BigInt(v);
    d = x === operand ? 0 : x > operand ? 1 : -1;
  }
  switch (c.result) {
    case 'equal': return d === 0;
    case 'not_equal': return d !== 0;
    case 'greater': return d > 0;
    case 'less': return d < 0;
    default: return false;
  }
}

function sortKvs(kvs: KeyValue[], target: string, order: 'ascend' | 'descend'): void {
  const sign = order === 'descend' ? -1 : 1;
  const cmp = (a: KeyValue, b: KeyValue): number => {
    switch (target) {
      case 'version': return a.version - b.version;
      case 'create': return a.createRevision - b.createRevision;
      case 'mod': return a.modRevision - b.modRevision;
      case 'value': return Buffer.compare(a.value, b.value);
      default: return Buffer.compare(a.key, b.key);
    }
  };
  // Stable sort, ties keep key order (as etcd's sort.Stable).
  kvs.sort((a, b) => sign * cmp(a, b));
}

/** etcd's checkIntervals: within one branch, no key is put twice or both put and deleted. */
function checkDuplicates(ops: RequestOp[]): MvccError | undefined {
  const r = branchWrites(ops);
  return r instanceof MvccError ? r : undefined;
}

function branchWrites(ops: RequestOp[]): { puts: Set<string>; dels: KeyBounds[] } | MvccError {
  const puts = new Set<string>();
  const dels: KeyBounds[] = [];
  for (const op of ops) {
    if ('deleteRange' in op) dels.push(resolveRange(op.deleteRange.key, op.deleteRange.rangeEnd));
  }
  const deleted = (k: string): boolean => dels.some((b) => (b.single ? b.start === k : k >= b.start && (b.end === undefined || k < b.end)));
  for (const op of ops) {
    let keys: Iterable<string> = [];
    if ('put' in op) {
      keys = [bytesToKey(op.put.key)];
    } else if ('txn' in op) {
      // Either nested branch may run, so each is checked alone and both are checked against ours.
      const s = branchWrites(op.txn.success);
      if (s instanceof MvccError) return s;
      const f = branchWrites(op.txn.failure);
      if (f instanceof MvccError) return f;
      keys = new Set([...s.puts, ...f.puts]);
    }
    for (const k of keys) {
      if (puts.has(k) || deleted(k)) return new MvccError('duplicate_key', `key ${JSON.stringify(k)} is written twice in one txn`);
      puts.add(k);
    }
  }
  return { puts, dels };
}

function fillRevision(t: TxnResult, rev: number): void {
  t.revision = rev;
  for (const r of t.responses) {
    if ('range' in r) r.range.revision = rev;
    else if ('put' in r) r.put.revision = rev;
    else if ('deleteRange' in r) r.deleteRange.revision = rev;
    else fillRevision(r.txn, rev);
  }
}
