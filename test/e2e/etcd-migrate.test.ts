/**
 * Issue 19, migration from etcd: `conurectl migrate from-etcd` from a real etcd 3.4 into a real
 * conured. A keyspace with binary and large values, leases with etcd's own (63-bit) ids and their
 * keys, then live writes, overwrites, deletes, a txn, lease revokes, an expiry and keep-alives on
 * the source while the mirror runs; SIGINT; the check passes and the target holds exactly the
 * source's keys, values, lease attachments and leases. The way back (to-etcd). Then a refused
 * non-empty target, --force, a TLS target, and bad input: clear messages, exit codes, nothing
 * written. Last, `snapshot import-etcd` of an `etcdctl snapshot save` file of the same etcd:
 * every revision kept, and damaged files refused.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EtcdClient, EtcdMirror, op, type KeyValue, type LeaseKeeper } from '../../src/client/etcd-client.js';
import { ensureDevCertificates } from '../../src/cli/dev-certs.js';
import { MvccError, importedState } from '../../src/mvcc/index.js';
import { readEtcdSnapshot } from '../../src/node/index.js';
import { InvalidArgumentError } from '../../src/util/index.js';
import { freePort, TestCluster } from '../support/cluster.js';
import { CONURECTL, startConured, tempDir, type ConuredProcess } from '../support/conured-process.js';
import { etcdctl, HAVE_ETCD, startConuredEndpoint, startEtcd, type EtcdEndpoint } from '../support/etcd-process.js';
import { sleep, until } from '../support/until.js';

const skip = !HAVE_ETCD && !process.env.CI ? 'etcd not installed (Debian etcd-server)' : false;
const ALL = Buffer.from([0]);

interface Run { code: number | null; stdout: string; stderr: string }

/** Starts conurectl; `done` resolves with its exit and output, `stderrMatch` waits for a line. */
function conurectl(args: string[]): { done: Promise<Run>; signal: (s: NodeJS.Signals) => void; stderrMatch: (re: RegExp, ms?: number) => Promise<void>; stderrText: () => string } {
  const child = spawn(process.execPath, [CONURECTL, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const done = new Promise<Run>((resolve) => child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); }));
  return {
    done,
    signal: (s) => { child.kill(s); },
    stderrText: () => stderr,
    stderrMatch: (re, ms = 30_000) => until(`conurectl stderr ${re}`, () => re.test(stderr) || (child.exitCode !== null ? (() => { throw new Error(`conurectl exited ${child.exitCode}: ${stderr}`); })() : undefined), ms).then(() => undefined),
  };
}

const ctl = (args: string[]) => conurectl(args).done;

/** Every key of `c` (one Range, no limit), as comparable tuples. */
async function dump(c: EtcdClient): Promise<Array<[string, string, string]>> {
  const r = await c.range(ALL, { rangeEnd: ALL });
  return r.kvs.map((kv: KeyValue) => [kv.keyBytes.toString('hex'), kv.value.toString('hex'), kv.lease]);
}

async function leaseView(c: EtcdClient): Promise<Array<[string, number]>> {
  const ids = (await c.leaseLeases()).sort();
  return Promise.all(ids.map(async (id) => [id, (await c.leaseTimeToLive(id)).grantedTtlSeconds] as [string, number]));
}

describe('conurectl migrate from-etcd', { skip, timeout: 90_000 }, () => {
  let etcd: EtcdEndpoint;
  let target: EtcdEndpoint;
  let src: EtcdClient;
  let dst: EtcdClient;
  let keeper: LeaseKeeper | undefined;

  before(async () => {
    [etcd, target] = await Promise.all([startEtcd(), startConuredEndpoint()]);
    src = new EtcdClient({ endpoints: [etcd.endpoint], callTimeoutMs: 10_000 });
    dst = new EtcdClient({ endpoints: [target.endpoint], callTimeoutMs: 10_000 });
  });
  after(async () => {
    await keeper?.stop();
    src?.close();
    dst?.close();
    await Promise.all([etcd?.close(), target?.close()]);
  });

  it('copies a live etcd, mirrors its changes until SIGINT, and the check passes: the target holds exactly the source\'s data', async () => {
    // The source: 2,000 small keys (several Range pages), binary keys and values, large values,
    // and leases (etcd's ids, above 2^53) with keys, one without keys.
    for (let i = 0; i < 2000; i += 100) {
      await src.runTxn({ success: Array.from({ length: 100 }, (_, j) => op.put(`/app/k/${String(i + j).padStart(4, '0')}`, `v${i + j}-${'x'.repeat((i + j) % 50)}`)) });
    }
    const binKey = Buffer.from([0x62, 0x00, 0xff, 0xfe, 0x80]);
    await src.put(binKey, randomBytes(700));
    await src.put(Buffer.from([0xff, 0xff, 0x01]), Buffer.from([0, 0, 0]));
    await src.put('/bin/value', randomBytes(5000));
    await src.put('/big/1', randomBytes(1024 * 1024));
    await src.put('/big/2', randomBytes(1200 * 1024));
    await src.put('/empty', '');
    const l1 = await src.leaseGrant(120);
    const l2 = await src.leaseGrant(90);
    const l3 = await src.leaseGrant(60);
    assert.ok(BigInt(l1.id) > 2n ** 53n, `etcd's lease ids are large (${l1.id})`);
    for (const k of ['/lease/1/a', '/lease/1/b', '/lease/1/c']) await src.put(k, k, { lease: l1.id });
    await src.put('/lease/2/a', 'revoked later', { lease: l2.id });

    const m = conurectl(['migrate', 'from-etcd', '--source', etcd.endpoint, '--dest', target.endpoint]);
    await m.stderrMatch(/mirroring source changes from revision \d+/);

    // Live changes on the source.
    for (let i = 0; i < 100; i++) await src.put(`/app/k/${String(i).padStart(4, '0')}`, `overwritten ${i}`);
    for (let i = 100; i < 150; i++) await src.delete(`/app/k/${String(i).padStart(4, '0')}`);
    await src.delete('/app/k/02', { prefix: true }); // 100 keys in one revision
    await src.runTxn({ success: [op.put('/txn/a', 'A'), op.put('/txn/b', 'B'), op.delete('/app/k/1999'), op.put(binKey, Buffer.from([1, 2, 3]))] });
    await src.put('/lease/1/d', 'joined l1', { lease: l1.id });
    await src.put('/lease/1/a', 'left l1'); // detached from its lease
    await src.leaseRevoke(l2.id); // its key goes in one revision
    const l6 = await src.leaseGrant(80); // a lease granted while mirroring
    await src.put('/lease/6/a', 'x', { lease: l6.id });
    await src.put('/lease/6/b', randomBytes(300), { lease: l6.id });
    const short = await src.leaseGrant(3); // expires on the source: revoked on the target too
    await src.put('/lease/short', 'expires', { lease: short.id });
    keeper = await src.grantAndKeep(4); // kept alive on the source past its TTL: the target's too
    await src.put('/lease/kept', 'kept alive', { lease: keeper.id });
    await src.delete('/big/1');
    await until('the short lease expired on the source', async () => (await src.leaseTimeToLive(short.id)).ttlSeconds < 0, 15_000);
    await sleep(4500 - 3000); // the kept lease is now past its 4 s TTL, renewed on the source
    await src.put('/last', 'the last write before the stop');

    m.signal('SIGINT');
    const r = await m.done;
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as Record<string, number | string | unknown[]>;
    assert.equal(summary.mismatches, 0, r.stderr);
    assert.equal(summary.mode, 'mirror');
    assert.equal(summary.keysCopied, 2000 + 6 + 4);
    assert.equal(summary.leasesCopied, 3);
    assert.ok((summary.eventsMirrored as number) >= 100 + 50 + 100 + 4 + 8, `events mirrored: ${summary.eventsMirrored}`);
    assert.ok((summary.leasesRevoked as number) >= 2, 'l2 and the short lease were revoked on the target');
    assert.ok((summary.leasesGranted as number) >= 2, 'l6 and the kept lease (and the short one, if it was still there) were granted on the target');
    assert.match(String(summary.revisions), /not preserved/);
    assert.match(r.stderr, /\d+ keys copied, \d+ events mirrored, \d+ leases, 0 mismatches/);
    assert.match(r.stderr, /revisions are not preserved/);

    // Independently: byte for byte, lease for lease.
    const [a, b] = await Promise.all([dump(src), dump(dst)]);
    // 2,010 copied; −50 −100 deleted; the txn +2 −1; /lease/1/d +1; l2's key −1; l6's +2; the
    // short lease's key +1 −1; /lease/kept +1; /big/1 −1; /last +1.
    assert.equal(a.length, 1864, 'the source\'s key count');
    assert.deepEqual(b, a, 'the target holds exactly the source\'s keys, values and lease attachments');
    assert.deepEqual(await leaseView(dst), await leaseView(src), 'the same leases, ids and granted TTLs');
    assert.ok((await dst.leaseLeases()).includes(l3.id), 'a lease without keys is copied too');
    assert.equal((await dst.get('/lease/short')), undefined);
    assert.equal((await dst.get('/lease/kept'))?.lease, keeper.id, 'the kept lease outlived its TTL on the target too');
    assert.ok((await dst.leaseTimeToLive(keeper.id)).ttlSeconds > 0);
    // The mirror has stopped: revoke the short-lived lease on both sides, so its expiry does not
    // write to the target during the later tests.
    await keeper.stop(true);
    await dst.leaseRevoke(keeper.id);
    keeper = undefined;
  });

  it('the way back: migrate to-etcd mirrors the ConureDB cluster into a fresh etcd, exactly', async () => {
    const back = await startEtcd();
    const etcd2 = new EtcdClient({ endpoints: [back.endpoint], callTimeoutMs: 10_000 });
    try {
      const m = conurectl(['migrate', 'to-etcd', '--source', target.endpoint, '--dest', back.endpoint]);
      await m.stderrMatch(/mirroring source changes/);
      assert.match(m.stderrText(), /migrating every key from ConureDB .* to etcd /);
      const l = await dst.leaseGrant(60);
      await dst.put('/back/leased', 'on ConureDB first', { lease: l.id });
      await dst.put('/app/k/0000', 'changed on ConureDB');
      await dst.delete('/txn/a');
      m.signal('SIGTERM');
      const r = await m.done;
      assert.equal(r.code, 0, r.stderr);
      const s = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.deepEqual([s.direction, s.mismatches], ['to-etcd', 0]);
      assert.ok((s.eventsMirrored as number) >= 3);
      assert.deepEqual(await dump(etcd2), await dump(dst));
      assert.deepEqual(await leaseView(etcd2), await leaseView(dst));
      await dst.leaseRevoke(l.id);
      await dst.put('/app/k/0000', 'overwritten 0');
      await dst.put('/txn/a', 'A');
    } finally {
      etcd2.close();
      await back.close();
    }
  });

  it('refuses a target with keys under the prefix (nothing written), copies over them with --force, and into a TLS target', async () => {
    const before = (await dst.range(ALL, { rangeEnd: ALL, countOnly: true })).revision;
    const refused = await ctl(['migrate', 'from-etcd', '--source', etcd.endpoint, '--dest', target.endpoint, '--prefix', '/app/', '--once']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /conurectl: the target holds \d+ keys under the prefix "\/app\/"; migrate into an empty target, or pass --force/);
    assert.equal(refused.stdout, '');
    assert.equal((await dst.range(ALL, { rangeEnd: ALL, countOnly: true })).revision, before, 'nothing was written');

    await dst.put('/app/only-on-target', 'stale');
    const forced = await ctl(['migrate', 'from-etcd', '--source', etcd.endpoint, '--dest', target.endpoint, '--prefix', '/app/', '--once', '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    const s = JSON.parse(forced.stdout) as Record<string, unknown>;
    assert.deepEqual([s.mode, s.mismatches, s.prefix, s.eventsMirrored], ['once', 0, '/app/', 0]);
    assert.match(forced.stderr, /--force: deleted \d+ keys on the target under the prefix "\/app\/"/);
    assert.equal(await dst.get('/app/only-on-target'), undefined, '--force deleted the target\'s own keys in scope');
    assert.deepEqual((await dst.range('/app/', { prefix: true })).kvs.map((kv) => [kv.key, kv.value.toString()]), (await src.range('/app/', { prefix: true })).kvs.map((kv) => [kv.key, kv.value.toString()]));

    // A target serving TLS: --dest https://… with --dest-cacert.
    const certs = tempDir('conure-migrate-tls-');
    let tls: ConuredProcess | undefined;
    try {
      const c = await ensureDevCertificates(certs.dir, ['127.0.0.1']);
      const port = await freePort();
      tls = await startConured({ dataDir: join(certs.dir, 'data'), args: ['--client-addr', `127.0.0.1:${port}`, '--cert-file', c.server.cert, '--key-file', c.server.key] });
      const args = ['migrate', 'from-etcd', '--source', etcd.endpoint, '--dest', `https://127.0.0.1:${port}`, '--prefix', '/lease/', '--once'];
      const untrusted = await ctl(['--timeout', '2000', ...args]);
      assert.equal(untrusted.code, 1, 'the target\'s certificate is not trusted without its CA');
      assert.match(untrusted.stderr, /the target \(127\.0\.0\.1:\d+\) did not answer/);
      const ok = await ctl([...args, '--dest-cacert', c.ca]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal((JSON.parse(ok.stdout) as { mismatches: number }).mismatches, 0);
      assert.ok((JSON.parse(ok.stdout) as { keysCopied: number }).keysCopied >= 4);
    } finally {
      await tls?.kill9();
      certs.cleanup();
    }
  });

  it('the check (EtcdMirror without the CLI) finds and lists every kind of difference', async () => {
    const l = await src.leaseGrant(120);
    for (const k of ['a', 'b', 'c', 'd']) await src.put(`/chk/${k}`, `value ${k}`, k === 'd' ? { lease: l.id } : {});
    const mirror = new EtcdMirror({ source: src, target: dst, prefix: '/chk/', mismatchesListedMax: 3 });
    await mirror.preflight();
    const rev = await mirror.copy();
    await mirror.stop();
    assert.deepEqual(await mirror.check(), { revision: rev, keys: 4, leases: 1, mismatches: 0, first: [] });
    await dst.put('/chk/a', 'changed on the target');
    await dst.delete('/chk/b');
    await dst.put(Buffer.from('/chk/\xff', 'latin1'), 'only on the target');
    await dst.put('/chk/d', 'value d'); // its lease dropped
    const c = await mirror.check();
    assert.equal(c.mismatches, 4);
    assert.deepEqual(c.first.map((m) => [m.kind, m.key]), [['value', '"/chk/a"'], ['missing_on_target', '"/chk/b"'], ['lease', '"/chk/d"']], 'the first three, in key order');
    assert.match(c.first[2]!.detail, new RegExp(`lease ${BigInt(l.id).toString(16)} on the source, none on the target`));
    await src.leaseRevoke(l.id);
    await src.delete('/chk/', { prefix: true });
    await dst.delete('/chk/', { prefix: true });
  });

  it('bad input: unreachable sides, the same server twice, bad flags — clear messages, exit codes, nothing written', async () => {
    const before = (await dst.range(ALL, { rangeEnd: ALL, countOnly: true })).revision;
    const dead = `127.0.0.1:${await freePort()}`;
    const base = ['--timeout', '1500', 'migrate', 'from-etcd'];
    const noSource = await ctl([...base, '--source', dead, '--dest', target.endpoint, '--once']);
    assert.equal(noSource.code, 1);
    assert.match(noSource.stderr, new RegExp(`conurectl: the source \\(${dead}\\) did not answer`));
    const noTarget = await ctl([...base, '--source', etcd.endpoint, '--dest', dead]);
    assert.equal(noTarget.code, 1);
    assert.match(noTarget.stderr, new RegExp(`conurectl: the target \\(${dead}\\) did not answer`));
    const same = await ctl([...base, '--source', target.endpoint, '--dest', target.endpoint, '--force']);
    assert.equal(same.code, 1);
    assert.match(same.stderr, /the source and the target are the same server/);

    const usage: Array<[string[], RegExp]> = [
      [['--source', etcd.endpoint], /required option '--dest <endpoints>' not specified/],
      [['--source', 'nohost', '--dest', target.endpoint], /--source: "nohost" is not host:port/],
      [['--source', etcd.endpoint, '--dest', '127.0.0.1:99999'], /--dest: port 99999 is out of range/],
      [['--source', etcd.endpoint, '--dest', target.endpoint, '--lease-ttl', 'forever'], /--lease-ttl must be granted or remaining/],
      [['--source', etcd.endpoint, '--dest', target.endpoint, '--page-size', '0'], /--page-size must be between 1 and 100000/],
      [['--source', etcd.endpoint, '--dest', target.endpoint, '--prefix', ''], /--prefix must not be empty/],
      [['--source', etcd.endpoint, '--dest', target.endpoint, '--source-cert', '/etc/hostname'], /--source-cert and --source-key go together/],
      [['--source', etcd.endpoint, '--dest', target.endpoint, '--dest-cacert', '/nonexistent/ca.pem'], /--dest-cacert: cannot read \/nonexistent\/ca.pem \(ENOENT\)/],
    ];
    await Promise.all(usage.map(async ([args, re]) => {
      const r = await ctl(['migrate', 'from-etcd', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }));
    assert.equal((await dst.range(ALL, { rangeEnd: ALL, countOnly: true })).revision, before, 'nothing was written');
  });
  it('snapshot import-etcd: an etcdctl snapshot of the same etcd becomes a ConureDB member with the same keys, revisions, history and leases; damaged files are refused', async () => {
    const files = tempDir('conure-import-etcd-');
    const cluster = new TestCluster();
    try {
      // History worth keeping: overwrites and a delete, then a compaction below them.
      for (let i = 0; i < 5; i++) await src.put('/hist/k', `v${i}`);
      await src.delete('/txn/b');
      const cur = (await src.put('/hist/after', 'x')).revision;
      await src.compact(cur - 4, true);
      const file = join(files.dir, 'etcd.db');
      const saved = await etcdctl(etcd.endpoint, ['snapshot', 'save', file]);
      assert.equal(saved.code, 0, saved.stderr);

      const m = await cluster.add({ id: 'imported0' });
      const args = ['snapshot', 'import-etcd', file, '--data-dir', m.dataDir, '--node-id', 'imported0', '--advertise-raft', m.raftAddr, '--advertise-http', `127.0.0.1:${m.httpPort}`];
      const r = await ctl(args);
      assert.equal(r.code, 0, r.stderr);
      const summary = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.deepEqual([summary.revision, summary.compactRevision, summary.sha256], [cur, cur - 4, 'verified']);
      assert.equal(summary.leases, (await src.leaseLeases()).length);
      assert.match(r.stderr, /start: conured --node-id imported0/);
      const again = await ctl(args);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /is not empty; import into a new data directory/);

      await m.start();
      await m.waitReady();
      const imported = new EtcdClient({ endpoints: [`127.0.0.1:${m.clientPort}`], callTimeoutMs: 10_000 });
      try {
        const full = async (c: EtcdClient, revision = 0) => {
          const res = await c.range(ALL, { rangeEnd: ALL, revision });
          return { revision: res.revision, kvs: res.kvs.map((kv) => [kv.keyBytes.toString('hex'), kv.value.toString('hex'), kv.createRevision, kv.modRevision, kv.version, kv.lease]) };
        };
        assert.deepEqual(await full(imported), await full(src), 'every key with its value, create and mod revision, version and lease; the same revision');
        assert.deepEqual((await full(imported, cur - 2)).kvs, (await full(src, cur - 2)).kvs, 'history above the compaction');
        assert.deepEqual((await imported.range('/hist/k', { revision: cur - 3 })).kvs[0]?.value.toString(), 'v3');
        await assert.rejects(imported.get('/hist/k', { revision: cur - 5 }), (e: { code?: string }) => e.code === 'compacted');
        assert.deepEqual(await leaseView(imported), await leaseView(src), 'leases with their ids and TTLs');
        // It is a working member: writes continue from the imported revision.
        assert.equal((await imported.put('/after-import', 'y')).revision, cur + 1);
      } finally {
        imported.close();
      }

      // Damaged files: a flipped byte (the sha256 trailer says so), garbage, a Conure snapshot.
      const blob = readFileSync(file);
      const bad = Buffer.from(blob);
      bad[Math.floor(bad.length / 2)]! ^= 0xff;
      writeFileSync(join(files.dir, 'bad.db'), bad);
      writeFileSync(join(files.dir, 'zeros.db'), Buffer.alloc(8192));
      const conureSnap = join(files.dir, 'conure.db');
      assert.equal((await ctl(['--endpoints', m.url, 'snapshot', 'save', conureSnap])).code, 0);
      for (const [name, re] of [['bad.db', /checksum mismatch/], ['zeros.db', /not a bbolt file/], ['conure.db', /not a bbolt file/], ['absent.db', /ENOENT/]] as const) {
        const dir = join(files.dir, `out-${name}`);
        const res = await ctl(['snapshot', 'import-etcd', join(files.dir, name), '--data-dir', dir, '--node-id', 'x', '--advertise-raft', '127.0.0.1:1', '--advertise-http', '127.0.0.1:2']);
        assert.equal(res.code, 1, name);
        assert.match(res.stderr, re, name);
      }
      // Random damage to the bbolt pages themselves (no trailer to catch it): refused with an
      // InvalidArgument (or an MvccError from the rows), never another exception or a hang.
      const db = blob.subarray(0, blob.length - 32);
      let refused = 0;
      for (let i = 0; i < 60; i++) {
        const d = Buffer.from(db);
        for (let j = 0; j < 1 + (i % 8); j++) d[Math.floor(Math.random() * Math.min(d.length, 64 * 1024))]! ^= 1 << (j % 8);
        try {
          const c = readEtcdSnapshot(d);
          importedState(c.rows, c.leases.map((l) => ({ id: l.id, ttlSeconds: l.ttlSeconds })), c.revision, c.compactRevision);
        } catch (err) {
          assert.ok(err instanceof InvalidArgumentError || err instanceof MvccError, `damage ${i}: ${String(err)}`);
          refused++;
        }
      }
      assert.ok(refused > 0, 'some damage was detected');
    } finally {
      await cluster.stopAll();
      files.cleanup();
    }
  });
});
