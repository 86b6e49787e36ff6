/**
 * Quorum-loss recovery on real processes (docs/operations.md): members are killed and their disks
 * wiped, the survivor is told by `conurectl recover` what to do, restarts with
 * `--force-new-cluster`, fresh members join, and every write acknowledged before the loss reads
 * back. A member that comes back with the old cluster's disk is refused. Arbiters cannot seed.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { freePort, missingKeys, startWriter, TestCluster, TestMember } from '../support/cluster.js';
import { tempDir } from '../support/conured-process.js';

const CONURECTL = fileURLToPath(new URL('../../src/cli/conurectl.js', import.meta.url));
const CONURED = fileURLToPath(new URL('../../src/cli/conured.js', import.meta.url));
const run = promisify(execFile);

async function conurectl(endpoints: string[], ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return run(process.execPath, [CONURECTL, '--endpoints', endpoints.join(','), '--timeout', '2000', ...args])
    .then((r) => ({ code: 0, out: r.stdout, err: r.stderr }), (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, out: e.stdout ?? '', err: e.stderr ?? '' }));
}

async function stats(m: TestMember): Promise<Record<string, unknown> & { transport: Record<string, number> }> {
  return (await (await fetch(`${m.url}/raft/stats`)).json()) as Record<string, unknown> & { transport: Record<string, number> };
}

async function until(what: string, pred: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try { if (await pred()) return; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Writes for a while through the voters and returns the acknowledged keys (at least 50). */
async function acknowledgedWrites(c: TestCluster, prefix: string): Promise<string[]> {
  const w = startWriter(() => c.seeds(), prefix);
  await until(`${prefix}: 50 acknowledged writes`, async () => w.acked.length >= 50);
  await new Promise((r) => setTimeout(r, 300));
  return w.stop();
}

const clusters: TestCluster[] = [];

/** Voters a (bootstrap) and b, and a third member (voter c, or arbiter z), all in the configuration. */
async function threeMembers(third: 'voter' | 'arbiter'): Promise<{ c: TestCluster; a: TestMember; b: TestMember; third: TestMember }> {
  const c = new TestCluster();
  clusters.push(c);
  const a = await c.add({ id: 'a', bootstrap: true });
  await a.start();
  await a.waitReady();
  const b = await c.add({ id: 'b', join: [a.url] });
  const t = await c.add(third === 'voter' ? { id: 'c', join: [a.url] } : { id: 'z', role: 'arbiter', join: [a.url] });
  await Promise.all([b.start(), t.start()]);
  const voters = third === 'voter' ? 3 : 2;
  await c.waitConfig((s) => s.filter((x) => x.suffrage === 'voter').length === voters && (third === 'voter' || s.some((x) => x.suffrage === 'arbiter')), `${voters} voters${third === 'arbiter' ? ' + arbiter' : ''}`);
  return { c, a, b, third: t };
}
after(async () => { for (const c of clusters) await c.stopAll(); });

describe('quorum-loss recovery: conured --force-new-cluster and conurectl recover', { timeout: 240_000 }, () => {
  it('3 voters: two killed and wiped; the survivor recovers, keeps every acknowledged write, two fresh members join; the old disk is refused', async () => {
    const { c, a, b, third: m3 } = await threeMembers('voter');
    const acked = await acknowledgedWrites(c, 'before');
    const oldCluster = (await stats(a)).cluster_id;
    assert.match(String(oldCluster), /^[0-9a-f]{32}$/);

    // The loss: b and c die for good. c's disk is kept aside (it will come back later).
    await Promise.all([b.kill9(), m3.kill9()]);
    const aside = tempDir('conure-old-disk-');
    cpSync(m3.dataDir, join(aside.dir, 'c'), { recursive: true });
    rmSync(b.dataDir, { recursive: true, force: true });
    rmSync(m3.dataDir, { recursive: true, force: true });

    const all = [a.url, b.url, m3.url];
    await until('a has no leader', async () => (await conurectl(all, 'health')).code === 1);
    const health = await conurectl(all, 'health');
    assert.match(health.err, /unhealthy: no reachable member knows a leader/);
    assert.match(health.err, /unreachable/);
    const plan = await conurectl(all, 'recover');
    assert.equal(plan.code, 0, plan.err);
    assert.match(plan.out, /recover from a \(http:\/\/127\.0\.0\.1:\d+\)/);
    assert.match(plan.out, /--force-new-cluster/);

    await a.stop();
    await a.start(['--force-new-cluster']);
    await a.waitReady();
    assert.match(a.log, /forced_new_cluster/);
    const s = await stats(a);
    assert.equal(s.state, 'leader');
    assert.notEqual(s.cluster_id, oldCluster, 'a new cluster id');
    assert.deepEqual((await c.config(a)).servers.map((x) => `${x.id}:${x.suffrage}`), ['a:voter']);
    assert.deepEqual(await missingKeys(a.url, acked), [], 'every acknowledged write survived');
    assert.equal((await conurectl([a.url], 'health')).code, 0);
    assert.equal((await conurectl([a.url, b.url], 'recover')).code, 1, 'no recovery needed once a leads');

    // Fresh members (same ids, empty disks) join the recovered cluster and catch up.
    await Promise.all([b.start(), m3.start()]);
    await c.waitConfig((x) => x.filter((y) => y.suffrage === 'voter').length === 3, '3 voters after recovery');
    for (const m of [b, m3]) {
      await m.waitReady();
      assert.equal((await stats(m)).cluster_id, s.cluster_id, `${m.spec.id} adopted the new cluster id`);
    }
    const more = await acknowledgedWrites(c, 'after');
    for (const m of [a, b, m3]) assert.deepEqual(await missingKeys(m.url, [...acked, ...more]), [], `all writes read back through ${m.spec.id}`);

    // A restart with the flag still set changes nothing (once per data directory).
    await a.stop();
    await a.start(['--force-new-cluster']);
    await a.waitReady();
    assert.match(a.log, /force_new_cluster_already_done/);
    await c.waitConfig((x) => x.filter((y) => y.suffrage === 'voter').length === 3, '3 voters kept');

    // The old c comes back with its old disk (new ports, same id as the new c): refused.
    const old = new TestMember({ id: 'c' }, join(aside.dir, 'c'), await freePort(), await freePort());
    const before = (await stats(a)).transport.foreignCluster ?? 0;
    try {
      await old.start();
      await until('a drops frames from the old cluster', async () => ((await stats(a)).transport.foreignCluster ?? 0) > before);
      assert.deepEqual(await missingKeys((await c.leader()).url, [...acked, ...more]), []);
      assert.deepEqual((await c.config()).servers.map((x) => `${x.id}:${x.suffrage}`).sort(), ['a:voter', 'b:voter', 'c:voter']);
    } finally {
      await old.stop();
    }
    // …and through /join it is told why, and exits.
    const joinOld = await run(process.execPath, [CONURED, ...old.args(), '--join', a.url], { timeout: 30_000 })
      .then(() => ({ code: 0, err: '' }), (e: { code?: number; stderr?: string }) => ({ code: e.code ?? 1, err: e.stderr ?? '' }));
    assert.notEqual(joinOld.code, 0);
    assert.match(joinOld.err, /belongs to cluster [0-9a-f]{32}, not to this cluster/);
    aside.cleanup();
  });

  it('2 voters + arbiter: the voter survives and recovers; a fresh voter and arbiter join', async () => {
    const { c, a, b, third: z } = await threeMembers('arbiter');
    const acked = await acknowledgedWrites(c, 'two');
    await Promise.all([b.kill9(), z.kill9()]);
    rmSync(b.dataDir, { recursive: true, force: true });
    rmSync(z.dataDir, { recursive: true, force: true });

    // Offline this time: conurectl rewrites the stopped member's data directory.
    await a.stop();
    const dry = await conurectl([a.url], 'recover', '--data-dir', a.dataDir, '--node-id', 'a');
    assert.equal(dry.code, 0, dry.err);
    assert.match(dry.out, /would rewrite .* removes b, z/s);
    const wet = await conurectl([a.url], 'recover', '--data-dir', a.dataDir, '--node-id', 'a', '--yes');
    assert.equal(wet.code, 0, wet.err);
    assert.match(wet.out, /a is the sole voter of new cluster [0-9a-f]{32}/);
    await a.start();
    await a.waitReady();
    assert.deepEqual(await missingKeys(a.url, acked), []);

    await Promise.all([b.start(), z.start()]);
    await c.waitConfig((s) => s.filter((x) => x.suffrage === 'voter').length === 2 && s.some((x) => x.id === 'z' && x.suffrage === 'arbiter'), '2 voters + arbiter after recovery');
    await b.waitReady();
    assert.deepEqual(await missingKeys(b.url, acked), []);
  });

  it('2 voters + arbiter: when only the arbiter survives, recovery is refused with the reason', async () => {
    const { a, b, third: z } = await threeMembers('arbiter');
    await Promise.all([a.kill9(), b.kill9()]);

    const all = [a.url, b.url, z.url];
    await until('z knows no leader', async () => (await conurectl(all, 'health')).code === 1);
    const plan = await conurectl(all, 'recover');
    assert.equal(plan.code, 1);
    assert.match(plan.out, /cannot recover from a member: the members that answered \(z\) are arbiters, which hold no state/);
    assert.match(plan.out, /conurectl snapshot restore/);

    await z.stop();
    const forced = await run(process.execPath, [CONURED, ...z.args(), '--force-new-cluster'], { timeout: 30_000 })
      .then(() => ({ code: 0, err: '' }), (e: { code?: number; stderr?: string }) => ({ code: e.code ?? 1, err: e.stderr ?? '' }));
    assert.equal(forced.code, 2);
    assert.match(forced.err, /an arbiter holds no state: it cannot seed a new cluster/);
    const offline = await conurectl([z.url], 'recover', '--data-dir', z.dataDir, '--node-id', 'z', '--yes');
    assert.equal(offline.code, 1);
    assert.match(offline.err, /z is an arbiter: it holds no state/);
  });
});
