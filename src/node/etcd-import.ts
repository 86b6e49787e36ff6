/**
 * `conurectl snapshot import-etcd`: an etcd v3 snapshot (the bbolt file `etcdctl snapshot save`
 * writes, or a member's `member/snap/db`) read into the data directory of a new single-member
 * ConureDB cluster, keeping keys, values, revisions (every stored revision, create and mod
 * revisions, versions), the compaction point and leases — what `etcdctl snapshot restore`
 * keeps. Membership, auth users and roles, and alarms are not imported.
 *
 * etcd's backend, as read here (etcd 3.4/3.5, server/mvcc):
 *
 * ```
 *   bucket "key":   17-byte revision main u64 BE │ '_' │ sub u64 BE   (+ 't' for a tombstone)
 *                   → mvccpb.KeyValue {1 key, 2 create_revision, 3 mod_revision, 4 version,
 *                                      5 value, 6 lease}
 *   bucket "lease": lease id u64 BE → leasepb.Lease {1 ID, 2 TTL, 3 RemainingTTL}
 *   bucket "meta":  "finishedCompactRev", "scheduledCompactRev" → 17-byte revisions; …
 *   bucket "auth":  "authEnabled" → [1] when enabled
 *   file:           the bbolt pages, then (from `etcdctl snapshot save`) sha256 of them
 * ```
 *
 * The current revision is the highest stored one, or the compacted revision when that is
 * higher (a compaction may have removed the last rows), as etcd computes it on restore.
 * Everything read is checked (bbolt.ts for the file, here for etcd's encodings, importedState
 * for the rows); a damaged file is an InvalidArgumentError.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { importedState, type ImportedRow } from '../mvcc/index.js';
import { LmdbRaftLog, LmdbStateStore } from '../storage/index.js';
import { InvalidArgumentError } from '../util/index.js';
import { BoltFile } from './bbolt.js';
import { writeBootstrapState } from './raft-replicator.js';

export interface EtcdSnapshotContents {
  /** The snapshot's current revision and compacted revision (etcd's). */
  revision: number;
  compactRevision: number;
  /** Every stored revision, ascending. */
  rows: ImportedRow[];
  leases: Array<{ id: bigint; ttlSeconds: number }>;
  /** Keys that exist at `revision`. */
  keys: number;
  /** Live keys attached to a lease the snapshot does not hold (kept attached, as etcd does). */
  keysWithUnknownLease: number;
  authEnabled: boolean;
  /** The sha256 trailer `etcdctl snapshot save` appends: verified, or absent (a raw db file). */
  sha256: 'verified' | 'absent';
}

const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

/** A minimal protobuf reader: varints as bigints, length-delimited bytes, unknown fields skipped. */
function protoFields(b: Buffer, what: string): Map<number, bigint | Buffer> {
  const out = new Map<number, bigint | Buffer>();
  let i = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (i >= b.length) throw new InvalidArgumentError(`${what}: a varint runs past the end`);
      const x = b[i++]!;
      v |= BigInt(x & 0x7f) << shift;
      if (!(x & 0x80)) return BigInt.asUintN(64, v);
    }
    throw new InvalidArgumentError(`${what}: a varint longer than 10 bytes`);
  };
  while (i < b.length) {
    const tag = varint();
    const field = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (field === 0) throw new InvalidArgumentError(`${what}: field number 0`);
    if (wire === 0) out.set(field, varint());
    else if (wire === 2) {
      const len = varint();
      if (len > BigInt(b.length - i)) throw new InvalidArgumentError(`${what}: field ${field} runs past the end`);
      out.set(field, b.subarray(i, i + Number(len)));
      i += Number(len);
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else throw new InvalidArgumentError(`${what}: wire type ${wire}`);
    if (i > b.length) throw new InvalidArgumentError(`${what}: field ${field} runs past the end`);
  }
  return out;
}

function int64Of(f: Map<number, bigint | Buffer>, n: number, what: string): bigint {
  const v = f.get(n);
  if (v === undefined) return 0n;
  if (typeof v !== 'bigint') throw new InvalidArgumentError(`${what}: field ${n} is not a varint`);
  return BigInt.asIntN(64, v);
}

function safeOf(v: bigint, what: string): number {
  if (v < 0n || v > SAFE_MAX) throw new InvalidArgumentError(`${what}: ${v} is out of range`);
  return Number(v);
}

function bytesOf(f: Map<number, bigint | Buffer>, n: number, what: string): Buffer {
  const v = f.get(n);
  if (v === undefined) return Buffer.alloc(0);
  if (typeof v === 'bigint') throw new InvalidArgumentError(`${what}: field ${n} is not bytes`);
  return v;
}

/** etcd's 17-byte revision key (18 with the tombstone mark). */
function revisionKey(k: Buffer): { main: number; sub: number; tombstone: boolean } {
  if ((k.length !== 17 && k.length !== 18) || k[8] !== 0x5f || (k.length === 18 && k[17] !== 0x74)) {
    throw new InvalidArgumentError(`etcd snapshot: a key-bucket key of ${k.length} bytes is no revision (0x${k.subarray(0, 20).toString('hex')})`);
  }
  return { main: safeOf(k.readBigUInt64BE(0), 'revision'), sub: safeOf(k.readBigUInt64BE(9), 'sub-revision'), tombstone: k.length === 18 };
}

/** Reads an etcd snapshot file's contents. Errors: InvalidArgumentError. */
export function readEtcdSnapshot(blob: Buffer): EtcdSnapshotContents {
  let db = blob;
  let sha256: EtcdSnapshotContents['sha256'] = 'absent';
  if (blob.length % 512 === 32) {
    db = blob.subarray(0, blob.length - 32);
    if (!createHash('sha256').update(db).digest().equals(blob.subarray(blob.length - 32))) {
      throw new InvalidArgumentError('etcd snapshot checksum mismatch (the sha256 after the data does not match: truncated or corrupt)');
    }
    sha256 = 'verified';
  }
  const bolt = new BoltFile(db);
  const names = new Set(bolt.rootEntries().filter((e) => e.bucket).map((e) => e.key.toString('latin1')));
  if (!names.has('key') || !names.has('meta')) throw new InvalidArgumentError('not an etcd v3 snapshot: the bbolt file has no "key" and "meta" buckets');

  const rows: ImportedRow[] = [];
  const live = new Map<string, bigint>(); // key (latin1) → lease of its live revision
  for (const e of bolt.bucket('key')) {
    if (e.bucket) throw new InvalidArgumentError('etcd snapshot: a nested bucket inside "key"');
    const r = revisionKey(e.key);
    const what = `etcd snapshot: revision ${r.main}.${r.sub}`;
    const f = protoFields(e.value, what);
    const key = bytesOf(f, 1, what);
    if (!key.length) throw new InvalidArgumentError(`${what}: empty key`);
    if (r.tombstone) {
      rows.push({ main: r.main, sub: r.sub, key, value: Buffer.alloc(0), createRevision: 0, version: 0, lease: 0, tombstone: true });
      live.delete(key.toString('latin1'));
      continue;
    }
    const mod = int64Of(f, 3, what);
    if (mod !== BigInt(r.main)) throw new InvalidArgumentError(`${what}: mod_revision ${mod} differs from its revision key`);
    const lease = int64Of(f, 6, what);
    if (lease < 0n) throw new InvalidArgumentError(`${what}: negative lease id ${lease} (ConureDB takes positive ids only)`);
    rows.push({
      main: r.main, sub: r.sub, key, value: bytesOf(f, 5, what),
      createRevision: safeOf(int64Of(f, 2, what), `${what} create_revision`), version: safeOf(int64Of(f, 4, what), `${what} version`),
      lease, tombstone: false,
    });
    live.set(key.toString('latin1'), lease);
  }

  const leases: EtcdSnapshotContents['leases'] = [];
  if (names.has('lease')) {
    for (const e of bolt.bucket('lease')) {
      if (e.key.length !== 8) throw new InvalidArgumentError(`etcd snapshot: a lease-bucket key of ${e.key.length} bytes`);
      const id = BigInt.asIntN(64, e.key.readBigUInt64BE(0));
      const f = protoFields(e.value, `etcd snapshot: lease ${id}`);
      const ttl = int64Of(f, 2, `lease ${id}`);
      if (id <= 0n) throw new InvalidArgumentError(`etcd snapshot: lease id ${id} is not positive (ConureDB takes positive ids only)`);
      leases.push({ id, ttlSeconds: safeOf(ttl, `lease ${id} TTL`) });
    }
  }

  const meta = new Map([...bolt.bucket('meta')].map((e) => [e.key.toString('latin1'), e.value]));
  // A compaction that was scheduled but had not finished counts, as etcd resumes it on restore.
  const compactRevision = Math.max(...['finishedCompactRev', 'scheduledCompactRev'].map((k) => {
    const v = meta.get(k);
    return v ? revisionKey(v).main : 0;
  }));
  const maxMain = rows.length ? rows[rows.length - 1]!.main : 1;
  const revision = Math.max(maxMain, compactRevision, 1);

  let authEnabled = false;
  if (names.has('auth')) for (const e of bolt.bucket('auth')) if (e.key.toString('latin1') === 'authEnabled' && e.value[0] === 1) authEnabled = true;

  const leaseIds = new Set(leases.map((l) => l.id));
  let keysWithUnknownLease = 0;
  for (const l of live.values()) if (l !== 0n && !leaseIds.has(l)) keysWithUnknownLease++;
  return { revision, compactRevision, rows, leases, keys: live.size, keysWithUnknownLease, authEnabled, sha256 };
}

export interface ImportEtcdOptions {
  file: string;
  dataDir: string;
  nodeId: string;
  advertiseRaft: string;
  advertiseHttp: string;
}

export interface ImportEtcdSummary {
  revision: number;
  compactRevision: number;
  keys: number;
  revisions: number;
  leases: number;
  keysWithUnknownLease: number;
  authEnabled: boolean;
  sha256: 'verified' | 'absent';
}

/**
 * Creates the data directory of a new single-member cluster (its only voter `nodeId`) holding
 * the etcd snapshot's data, as `restoreSnapshot` does for Conure's own snapshots: the state at
 * applied index 1 and a bootstrap raft snapshot. Refuses a non-empty directory.
 */
export async function importEtcdSnapshot(o: ImportEtcdOptions): Promise<ImportEtcdSummary> {
  if (existsSync(o.dataDir) && readdirSync(o.dataDir).some((f) => f !== 'lost+found')) {
    throw new InvalidArgumentError(`${o.dataDir} is not empty; import into a new data directory`);
  }
  const snap = readEtcdSnapshot(readFileSync(o.file));
  const data = importedState(snap.rows, snap.leases, snap.revision, snap.compactRevision);
  const store = new LmdbStateStore({ dir: o.dataDir });
  const log = new LmdbRaftLog({ dir: o.dataDir });
  try {
    await store.restore(1, data);
    await writeBootstrapState(log, o.nodeId, o.advertiseRaft, o.advertiseHttp);
    await store.sync();
  } finally {
    await log.close();
    await store.close();
  }
  return {
    revision: snap.revision, compactRevision: snap.compactRevision, keys: snap.keys, revisions: snap.rows.length,
    leases: snap.leases.length, keysWithUnknownLease: snap.keysWithUnknownLease, authEnabled: snap.authEnabled, sha256: snap.sha256,
  };
}
