/**
 * `conurectl migrate from-etcd` (and `to-etcd`, the way back): an EtcdMirror from a live etcd
 * to a ConureDB cluster, or from ConureDB to etcd (both through their etcd v3 client ports; the
 * mirror is the same either way), run to the end: preflight, copy, mirror until `stop`
 * resolves (a signal) unless `once`, stop, check. Returns the summary and the exit status
 * (0: the check found no mismatch, 1: it found some); failures are thrown (MirrorError and the
 * client's errors, with messages meant for the user). Testable without the CLI.
 */
import { EtcdClient, EtcdMirror, printable, type CheckResult, type MirrorStats, type Mismatch } from '../client/index.js';

export interface TlsFiles { ca?: Buffer; cert?: Buffer; key?: Buffer }

export interface MigrateOptions {
  /** What each side is, for messages: `from-etcd` (etcd → ConureDB) or `to-etcd` (ConureDB → etcd). */
  direction: 'from-etcd' | 'to-etcd';
  source: string[];
  dest: string[];
  prefix?: string;
  once: boolean;
  force: boolean;
  leaseTtl: 'granted' | 'remaining';
  /** Deadline of each call, ms. */
  timeoutMs: number;
  pageKeysMax?: number;
  sourceTls?: TlsFiles;
  destTls?: TlsFiles;
  /** Resolves (with a reason, e.g. the signal's name) when mirroring should stop. */
  stop: Promise<string>;
  /** Progress lines (stderr). */
  progress: (line: string) => void;
  /** Test hooks: lease sync period and drain timeout, ms. */
  leaseSyncMs?: number;
  drainTimeoutMs?: number;
}

export interface MigrateSummary extends MirrorStats {
  direction: 'from-etcd' | 'to-etcd';
  source: string;
  target: string;
  prefix: string;
  mode: 'once' | 'mirror';
  checkedAtRevision: number;
  checkedKeys: number;
  checkedLeases: number;
  mismatches: number;
  firstMismatches: Mismatch[];
  targetRevision: number;
  revisions: string;
}

export async function migrateFromEtcd(o: MigrateOptions): Promise<{ summary: MigrateSummary; exitCode: 0 | 1 }> {
  const source = new EtcdClient({ endpoints: o.source, callTimeoutMs: o.timeoutMs, ...(o.sourceTls && { tls: o.sourceTls }) });
  const target = new EtcdClient({ endpoints: o.dest, callTimeoutMs: o.timeoutMs, ...(o.destTls && { tls: o.destTls }) });
  try {
    const mirror = new EtcdMirror({
      source, target, force: o.force, leaseTtl: o.leaseTtl, onProgress: o.progress,
      ...(o.prefix !== undefined && { prefix: o.prefix }),
      ...(o.pageKeysMax !== undefined && { pageKeysMax: o.pageKeysMax }),
      ...(o.leaseSyncMs !== undefined && { leaseSyncMs: o.leaseSyncMs }),
      ...(o.drainTimeoutMs !== undefined && { drainTimeoutMs: o.drainTimeoutMs }),
    });
    const scope = o.prefix ? `keys under ${printable(Buffer.from(o.prefix))}` : 'every key';
    const [from, to] = o.direction === 'from-etcd' ? ['etcd', 'ConureDB'] : ['ConureDB', 'etcd'];
    o.progress(`migrating ${scope} from ${from} ${o.source.join(',')} to ${to} ${o.dest.join(',')}`);
    const pre = await mirror.preflight();
    o.progress(`source at revision ${pre.sourceRevision}; copying`);
    const r = await mirror.copy();
    const copied = mirror.summary();
    o.progress(`copied ${copied.keysCopied} keys and ${copied.leasesCopied} leases at source revision ${r}`);
    if (!o.once) {
      await mirror.startMirroring();
      o.progress(`mirroring source changes from revision ${r + 1}; stop with Ctrl-C (SIGINT) or SIGTERM`);
      const why = await Promise.race([o.stop, mirror.failed()]);
      o.progress(`${why}: stopping once the target has the source's latest changes`);
    }
    const through = await mirror.stop();
    o.progress(`checking the target against the source at revision ${through}`);
    const check: CheckResult = await mirror.check(through);
    const targetRevision = (await target.range(mirror.start, { rangeEnd: mirror.end, countOnly: true })).revision;
    const stats = mirror.summary();
    const summary: MigrateSummary = {
      direction: o.direction, source: o.source.join(','), target: o.dest.join(','), prefix: o.prefix ?? '', mode: o.once ? 'once' : 'mirror',
      ...stats,
      checkedAtRevision: check.revision, checkedKeys: check.keys, checkedLeases: check.leases,
      mismatches: check.mismatches, firstMismatches: check.first, targetRevision,
      revisions: `not preserved: the target numbers its own writes (it is at revision ${targetRevision}); create and mod revisions and versions differ from the source's, and its history starts at the copy`,
    };
    for (const m of check.first) o.progress(`mismatch: ${m.kind} ${m.key}: ${m.detail}`);
    if (check.mismatches > check.first.length) o.progress(`… and ${check.mismatches - check.first.length} more mismatches`);
    o.progress(`${stats.keysCopied} keys copied, ${stats.eventsMirrored} events mirrored, ${stats.leasesCopied + stats.leasesGranted} leases, ${check.mismatches} mismatches (checked ${check.keys} keys and ${check.leases} leases at source revision ${check.revision})`);
    o.progress('revisions are not preserved: the target assigns its own');
    return { summary, exitCode: check.mismatches ? 1 : 0 };
  } finally {
    source.close();
    target.close();
  }
}

/**
 * Parses an endpoint list (`host:port`, `http://host:port`, `https://host:port`, `[v6]:port`),
 * or returns a message saying what is wrong.
 */
export function parseEndpoints(text: string, flag: string): string[] | string {
  const list = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (!list.length) return `${flag} needs at least one endpoint (host:port)`;
  for (const e of list) {
    if (!/^(https?:\/\/)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):\d{1,5}\/?$/.test(e)) return `${flag}: ${JSON.stringify(e)} is not host:port (or http(s)://host:port)`;
    const port = Number(/:(\d+)\/?$/.exec(e)![1]);
    if (port < 1 || port > 65535) return `${flag}: port ${port} is out of range`;
  }
  return list;
}
