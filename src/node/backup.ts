/**
 * Backup and restore of a ConureDB member's data (`conurectl snapshot save|restore`).
 *
 * - `saveSnapshot` streams Maintenance.Snapshot from a member's JSON gateway
 *   (`POST /v3/maintenance/snapshot`) into a file: written to `<file>.part`, checksum-verified,
 *   fsynced, then renamed. The file is the same one `etcdctl snapshot save` writes.
 * - `restoreSnapshot` turns a snapshot file into the data directory of a NEW single-member
 *   cluster (as `etcdctl snapshot restore` does): the state store holds the snapshot's data at
 *   applied index 1, and the raft log holds a bootstrap snapshot whose only voter is the given
 *   member. Start `conured` on that directory (no `--bootstrap` needed), then let the other
 *   members join it with empty data directories.
 */
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { unpack } from 'msgpackr';
import { BUCKETS, decodeSnapshot } from '../mvcc/index.js';
import { LmdbStateStore, LmdbRaftLog } from '../storage/index.js';
import { ConureError, InvalidArgumentError } from '../util/index.js';
import { writeBootstrapState } from './raft-replicator.js';

export interface SaveResult { bytes: number; appliedIndex: number }

export async function saveSnapshot(endpoint: string, file: string, timeoutMs = 10 * 60_000): Promise<SaveResult> {
  const res = await fetch(`${endpoint.replace(/\/+$/, '')}/v3/maintenance/snapshot`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok || !res.body) throw new ConureError('unavailable', `${endpoint} answered ${res.status} to the snapshot request: ${(await res.text()).slice(0, 300)}`);
  const part = `${file}.part`;
  const fd = openSync(part, 'w');
  let bytes = 0;
  try {
    let pending = '';
    const decoder = new TextDecoder();
    const writeLine = (line: string) => {
      if (!line.trim()) return;
      const msg = JSON.parse(line) as { result?: { blob?: string }; error?: string };
      if (msg.error) throw new ConureError('unavailable', `snapshot stream failed: ${msg.error}`);
      const blob = Buffer.from(msg.result?.blob ?? '', 'base64');
      writeSync(fd, blob);
      bytes += blob.length;
    };
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      pending += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        writeLine(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
    }
    writeLine(pending);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(part, { force: true });
    throw err;
  }
  closeSync(fd);
  const { appliedIndex } = decodeSnapshot(readFileSync(part)); // verifies magic and checksum
  renameSync(part, file);
  return { bytes, appliedIndex };
}

export interface RestoreOptions {
  file: string;
  dataDir: string;
  nodeId: string;
  advertiseRaft: string;
  advertiseHttp: string;
}

export async function restoreSnapshot(o: RestoreOptions): Promise<{ buckets: number }> {
  // A filesystem's own lost+found (the root of a volume) does not count.
  if (existsSync(o.dataDir) && readdirSync(o.dataDir).some((f) => f !== 'lost+found')) {
    throw new InvalidArgumentError(`${o.dataDir} is not empty; restore into a new data directory`);
  }
  const snap = decodeSnapshot(readFileSync(o.file));
  const store = new LmdbStateStore({ dir: o.dataDir });
  const log = new LmdbRaftLog({ dir: o.dataDir });
  try {
    // Index 1 is the bootstrap snapshot of the new cluster; the data keeps its MVCC revisions.
    await store.restore(1, snap.data);
    await writeBootstrapState(log, o.nodeId, o.advertiseRaft, o.advertiseHttp);
    await store.sync();
  } finally {
    await log.close();
    await store.close();
  }
  return { buckets: snap.data.size };
}

export interface SnapshotStatus {
  /** The MVCC revision the snapshot holds (etcdctl snapshot status's `revision`). */
  revision: number;
  compactRevision: number;
  /** Keys present at `revision` (not deleted), and every stored revision of every key. */
  keys: number;
  revisions: number;
  leases: number;
  /** Raft index the member had applied when it took the snapshot. */
  appliedIndex: number;
  totalSize: number;
  /** The file's sha256 trailer (verified), hex. */
  sha256: string;
}

/** Reads and verifies a snapshot file (`conurectl snapshot status`). Errors: InvalidArgumentError. */
export function snapshotStatus(file: string): SnapshotStatus {
  const blob = readFileSync(file);
  const snap = decodeSnapshot(blob);
  const meta = new Map((snap.data.get(BUCKETS.meta) ?? []).map((kv) => [Buffer.from(kv.key).toString('utf8'), kv.value]));
  const u64 = (v: Uint8Array | undefined): number => (v && v.length === 8 ? Number(Buffer.from(v).readBigUInt64BE(0)) : 0);
  // Rows are in revision order: the last row of a key says whether it is live.
  const live = new Map<string, boolean>();
  const rows = snap.data.get(BUCKETS.key) ?? [];
  for (const { value } of rows) {
    const row = unpack(value) as [Uint8Array, Uint8Array, number, number, number, boolean | number];
    live.set(Buffer.from(row[0]).toString('latin1'), !row[5]);
  }
  return {
    revision: u64(meta.get('rev')) || 1,
    compactRevision: u64(meta.get('compact')),
    keys: [...live.values()].filter(Boolean).length,
    revisions: rows.length,
    leases: (snap.data.get(BUCKETS.lease) ?? []).length,
    appliedIndex: snap.appliedIndex,
    totalSize: blob.length,
    sha256: blob.subarray(blob.length - 32).toString('hex'),
  };
}
