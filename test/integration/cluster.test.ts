/**
 * Replicated ConureDB with real processes on 127.0.0.1: formation, follower writes, leader
 * failover, arbiters, scaling with /join and /remove under load, restarts, and disk loss.
 * Timeouts bound every wait; nothing asserts timings.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { execFile } from 'node:child_process';
import { CONURECTL } from '../support/conured-process.js';
import { missingKeys, startWriter, TestCluster } from '../support/cluster.js';

const run = promisify(execFile);

async function put(url: string, key: string, value: string): Promise<void> {
  const res = await fetch(`${url}/kv?key=${key}&value=${value}`, { method: 'PUT' });
  assert.equal(res.status, 200, `PUT via ${url}: ${await res.text()}`);
}

async function get(url: string, key: string): Promise<string> {
  const res = await fetch(`${url}/kv?key=${key}`);
  assert.equal(res.status, 200, `GET via ${url}`);
  return res.text();
}

/** Bootstrap + voter + arbiter, as `conurectl dev cluster` and the chart start them. */
/** The member's MVCC revision, from a linearizable etcd Range through the `/v3` gateway. */
async function revision(url: string): Promise<number> {
  const res = await fetch(`${url}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from('rev-probe').toString('base64') }) });
  assert.equal(res.status, 200, await res.clone().text());
  return Number(((await res.json()) as { header: { revision: string } }).header.revision);
}

async function threeMembers(): Promise<TestCluster> {
  const c = new TestCluster();
  const boot = await c.add({ id: 'boot', bootstrap: true });
  const v1 = await c.add({ id: 'v1' });
  const arb = await c.add({ id: 'arb', role: 'arbiter' });
  boot.spec.join = [v1.url]; v1.spec.join = [boot.url]; arb.spec.join = [boot.url, v1.url];
  await boot.start();
  await v1.start();
  await arb.start();
  await c.waitConfig((s) => s.length === 3 && s.filter((x) => x.suffrage === 'voter').length === 2 && s.some((x) => x.id === 'arb' && x.suffrage === 'arbiter') && s.every((x) => (x as { address?: string }).address), '2 voters + 1 arbiter');
  await arb.waitReady();
  await v1.waitReady();
  return c;
}

function duBytes(dir: string): number {
  return Number(execFileSync('du', ['-sb', dir]).toString().split('\t')[0]);
}

describe('replicated cluster', { timeout: 240_000 }, () => {
  it('forms bootstrap + voter + arbiter with the right suffrage; follower writes reach every voter; arbiters refuse data', async () => {
    const c = await threeMembers();
    try {
      const config = await c.config();
      assert.deepEqual(config.servers.map((s) => [s.id, s.suffrage]), [['arb', 'arbiter'], ['boot', 'voter'], ['v1', 'voter']]);
      assert.equal(config.servers.find((s) => s.id === 'v1')!.address, c.get('v1').raftAddr);
      const leader = await c.leader();
      const follower = c.members.find((m) => m !== leader && m.spec.role !== 'arbiter')!;
      await put(follower.url, 'from-follower', 'hello');
      for (const m of [c.get('boot'), c.get('v1')]) assert.equal(await get(m.url, 'from-follower'), 'hello', m.spec.id);
      const arb = await fetch(`${c.get('arb').url}/kv?key=from-follower`);
      assert.equal(arb.status, 503);
      assert.match(await arb.text(), /arbiter: it holds no data/);
      // A follower asked to change membership answers 409 with the leader.
      const res = await fetch(`${follower.url}/remove`, { method: 'POST', body: JSON.stringify({ ID: 'arb' }) });
      assert.equal(res.status, 409);
      assert.equal(((await res.json()) as { leader_http: string }).leader_http, `127.0.0.1:${leader.httpPort}`);
      // Bad joins leave membership unchanged.
      for (const body of ['{oops', '{"ID":"","RaftAddr":"127.0.0.1:1"}', '{"ID":"x","RaftAddr":"no-such-host.invalid:1"}']) {
        assert.equal((await fetch(`${leader.url}/join`, { method: 'POST', body })).status, 400, body);
      }
      assert.equal((await c.config()).servers.length, 3);
    } finally { await c.stopAll(); }
  });

  it('survives kill -9 of the leader: a new leader, no acknowledged write lost, the old leader rejoins', async () => {
    const c = await threeMembers();
    try {
      const writer = startWriter(() => c.members.filter((m) => m.running && m.spec.role !== 'arbiter').map((m) => m.url), 'fo');
      await new Promise((r) => setTimeout(r, 1500));
      const old = await c.leader();
      await old.kill9();
      const next = await c.leader(15_000);
      assert.notEqual(next.spec.id, old.spec.id);
      await new Promise((r) => setTimeout(r, 1500));
      const acked = await writer.stop();
      assert.ok(acked.length > 10, `writer made progress (${acked.length} acks)`);
      assert.deepEqual(await missingKeys(next.url, acked), []);
      await old.start();
      await old.waitReady();
      const status = (await (await fetch(`${old.url}/status`)).json()) as { is_leader: boolean; leader: string };
      assert.equal(status.leader, `127.0.0.1:${(await c.leader()).raftPort}`);
      assert.deepEqual(await missingKeys(old.url, acked), [], 'the restarted member caught up');
    } finally { await c.stopAll(); }
  });

  it('keeps writing after losing a voter in 2 voters + 1 arbiter, and the arbiter disk stays tiny', async () => {
    const c = await threeMembers();
    try {
      const leader = await c.leader();
      const big = 'x'.repeat(20_000);
      for (let i = 0; i < 200; i += 20) await Promise.all(Array.from({ length: 20 }, (_, j) => put(leader.url, `big-${i + j}`, big)));
      const voters = c.members.filter((m) => m.spec.role !== 'arbiter');
      const victim = voters.find((m) => m !== leader)!;
      await victim.kill9();
      await put(leader.url, 'after-voter-loss', 'still-writable');
      assert.equal(await get(leader.url, 'after-voter-loss'), 'still-writable');
      const voterBytes = duBytes(leader.dataDir);
      const arbiterBytes = duBytes(c.get('arb').dataDir);
      assert.ok(voterBytes > 4_000_000, `voter holds the data (${voterBytes} bytes)`);
      assert.ok(arbiterBytes < voterBytes / 4, `arbiter stays small: ${arbiterBytes} bytes vs voter ${voterBytes}`);
      const stats = (await (await fetch(`${c.get('arb').url}/raft/stats`)).json()) as { payload_floor: number; commit_index: number };
      assert.ok(stats.payload_floor > 0, 'the arbiter dropped payloads every voter acknowledged');
    } finally { await c.stopAll(); }
  });

  it('loses no acknowledged write when the leader of 2 voters + 1 arbiter loses its disk for good', async () => {
    const c = await threeMembers();
    try {
      const writer = startWriter(() => c.members.filter((m) => m.running && m.spec.role !== 'arbiter').map((m) => m.url), 'disk');
      await new Promise((r) => setTimeout(r, 1500));
      const old = await c.leader();
      await old.kill9();
      rmSync(old.dataDir, { recursive: true, force: true });
      const next = await c.leader(15_000);
      await new Promise((r) => setTimeout(r, 1000));
      const acked = await writer.stop();
      assert.deepEqual(await missingKeys(next.url, acked), [], 'acknowledged writes survive the loss of the leader and its disk');
      // The member comes back with an empty disk under the same id: it must not resume as a voter
      // that forgot its vote; it re-enters as a learner, catches up and is promoted.
      await old.start();
      await c.waitConfig((s) => s.filter((x) => x.suffrage === 'voter').length === 2 && s.length === 3, 'the wiped member back as a voter');
      await old.waitReady();
      assert.deepEqual(await missingKeys(old.url, acked), []);
      await put(old.url, 'after-disk-loss', 'ok');
    } finally { await c.stopAll(); }
  });

  it('scales 1 → 3 → 5 voters and back to 1 with /join and /remove under a writer; nothing acknowledged is lost', async () => {
    const c = new TestCluster();
    try {
      const boot = await c.add({ id: 'n0', bootstrap: true });
      await boot.start();
      await boot.waitReady();
      const live = () => c.members.filter((m) => m.running).map((m) => m.url);
      const writer = startWriter(live, 'scale');
      for (let n = 1; n <= 4; n++) {
        const m = await c.add({ id: `n${n}`, join: [boot.url] });
        await m.start();
        const want = n + 1;
        if (want === 3 || want === 5) {
          await c.waitConfig((s) => s.filter((x) => x.suffrage === 'voter').length === want, `${want} voters`);
        }
      }
      // Scale back down to 1, removing members (the leader last if it is one of them).
      for (const id of ['n4', 'n3', 'n2', 'n1']) {
        const leader = await c.leader();
        const res = await fetch(`${leader.url}/remove`, { method: 'POST', body: JSON.stringify({ ID: id }) });
        assert.equal(res.status, 200, `remove ${id}: ${await res.text()}`);
        await c.get(id).stop();
        await c.waitConfig((s) => !s.some((x) => x.id === id), `${id} removed`);
      }
      await c.waitConfig((s) => s.length === 1 && s[0]!.id === 'n0', 'only n0 left');
      await new Promise((r) => setTimeout(r, 500));
      const acked = await writer.stop();
      assert.ok(acked.length > 20, `writer made progress (${acked.length} acks)`);
      assert.deepEqual(await missingKeys(boot.url, acked), []);
      // Removing an absent member is not an error; removing the last voter is refused.
      assert.deepEqual(await (await fetch(`${boot.url}/remove`, { method: 'POST', body: '{"ID":"n4"}' })).json(), { removed: false });
      assert.equal((await fetch(`${boot.url}/remove`, { method: 'POST', body: '{"ID":"n0"}' })).status, 400);
    } finally { await c.stopAll(); }
  });

  it('restarts never change membership; a removed member that restarts re-joins by itself', async () => {
    const c = await threeMembers();
    try {
      const before = JSON.stringify((await c.config()).servers);
      const v1 = c.get('v1');
      assert.equal(await v1.stop(), 0, 'SIGTERM exits cleanly');
      await v1.start();
      await v1.waitReady();
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(JSON.stringify((await c.config()).servers), before, 'a pod-style restart leaves membership alone');
      const leader = await c.leader();
      const target = leader === v1 ? c.get('boot') : v1;
      assert.equal((await fetch(`${leader.url}/remove`, { method: 'POST', body: JSON.stringify({ ID: target.spec.id }) })).status, 200);
      await c.waitConfig((s) => !s.some((x) => x.id === target.spec.id), `${target.spec.id} removed`);
      await target.stop();
      await target.start();
      await c.waitConfig((s) => s.some((x) => x.id === target.spec.id && x.suffrage === 'voter'), `${target.spec.id} re-joined as a voter`);
      await target.waitReady();
      await put(target.url, 'rejoined', 'yes');
      assert.equal(await get((await c.leader()).url, 'rejoined'), 'yes');
    } finally { await c.stopAll(); }
  });

  it('compacts its log behind snapshots, and a new member catches up from a snapshot', async () => {
    const c = new TestCluster();
    try {
      const boot = await c.add({ id: 's0', bootstrap: true });
      await boot.start(['--snapshot-entries', '100']);
      await boot.waitReady();
      const keys = Array.from({ length: 1500 }, (_, i) => `snap-${i}`);
      for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => put(boot.url, k, `v-${k}`)));
      const stats = (await (await fetch(`${boot.url}/raft/stats`)).json()) as { snapshot_index: number; first_log_index: number; last_log_index: number };
      assert.ok(stats.snapshot_index >= 1400, `snapshot taken (${stats.snapshot_index})`);
      assert.ok(stats.first_log_index > 100, `log compacted (first index ${stats.first_log_index})`);
      assert.ok(stats.last_log_index - stats.first_log_index < 1200, 'the log holds a bounded tail');
      // Writes after the last snapshot: the state the joiner fetches is ahead of the snapshot.
      for (let i = 0; i < 30; i++) await put(boot.url, `after-snap-${i}`, 'x');
      const joiner = await c.add({ id: 's1', join: [boot.url] });
      await joiner.start(['--snapshot-entries', '100']);
      await c.waitConfig((s) => s.some((x) => x.id === 's1' && x.suffrage === 'voter'), 's1 promoted after catching up');
      await joiner.waitReady();
      assert.deepEqual(await missingKeys(joiner.url, keys), []);
      assert.match(joiner.log, /snapshot_installed/);
      // The state served is newer than the snapshot raft announced; the entries in between must
      // not be applied twice (they would bump the revision): both members agree on the revision.
      assert.equal(await revision(joiner.url), await revision(boot.url));
      await put(joiner.url, 'after-join', 'x');
      assert.equal(await revision(joiner.url), await revision(boot.url));
    } finally { await c.stopAll(); }
  });

  it('a new member killed as soon as it has installed a snapshot restarts and serves every key', async () => {
    const c = new TestCluster();
    try {
      const boot = await c.add({ id: 'k0', bootstrap: true });
      await boot.start(['--snapshot-entries', '20']);
      await boot.waitReady();
      const keys = Array.from({ length: 200 }, (_, i) => `ks-${i}`);
      for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => put(boot.url, k, `v-${k}`)));
      const stats = (await (await fetch(`${boot.url}/raft/stats`)).json()) as { first_log_index: number };
      assert.ok(stats.first_log_index > 1, `log compacted (first index ${stats.first_log_index})`);
      // Writes after the last snapshot: the state the joiner fetches is ahead of the snapshot.
      for (let i = 0; i < 7; i++) await put(boot.url, keys[i]!, `v-${keys[i]}`);
      const joiner = await c.add({ id: 'k1', join: [boot.url] });
      await joiner.start(['--snapshot-entries', '20']);
      // Killed from the very chunk of stderr that reports the install.
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`k1 installed no snapshot:\n${joiner.log}`)), 30_000);
        const killAtInstall = (): void => {
          if (!/snapshot_installed/.test(joiner.log)) return;
          joiner.proc!.kill('SIGKILL');
          clearTimeout(timer);
          resolve();
        };
        joiner.proc!.stderr!.on('data', killAtInstall);
        killAtInstall();
      });
      await joiner.kill9();
      await joiner.start(['--snapshot-entries', '20']); // the old driver refused: "applied N is beyond commit M"
      await joiner.waitReady();
      const missing = await missingKeys(joiner.url, keys);
      if (missing.length > 0) {
        const sample = await (await fetch(`${joiner.url}/kv?key=${missing[0]}`)).text();
        assert.fail(`k1 misses ${missing.length} keys (${missing[0]} reads ${JSON.stringify(sample.slice(0, 200))}); its log:\n${joiner.log.split('\n').slice(-60).join('\n')}`);
      }
      assert.doesNotMatch(joiner.log, /is beyond commit/);
    } finally { await c.stopAll(); }
  });

  it('conurectl manages members and leadership; SIGTERM on the leader hands leadership over', async () => {
    const c = await threeMembers();
    try {
      const env = { ...process.env, CONURE_ENDPOINTS: c.seeds().join(',') };
      const ctl = async (...args: string[]) => (await run(process.execPath, [CONURECTL, ...args], { env })).stdout;
      const members = JSON.parse(await ctl('members')) as { servers: Array<{ id: string; suffrage: string }> };
      assert.deepEqual(members.servers.map((s) => s.suffrage).sort(), ['arbiter', 'voter', 'voter']);
      const leader = await c.leader();
      const other = c.members.find((m) => m !== leader && m.spec.role !== 'arbiter')!;
      await run(process.execPath, [CONURECTL, '--endpoints', leader.url, 'leader', 'transfer', other.spec.id], { env });
      assert.equal((await c.leader()).spec.id, other.spec.id, 'leadership moved where asked');
      // A learner added by hand stays a learner until promoted.
      const extra = await c.add({ id: 'extra' });
      await extra.start(['--bootstrap=false', '--join', 'http://127.0.0.1:9']); // its own join never succeeds
      await ctl('members', 'add', 'extra', extra.raftAddr, '--role', 'learner', '--http-addr', `127.0.0.1:${extra.httpPort}`);
      await c.waitConfig((s) => s.some((x) => x.id === 'extra' && x.suffrage === 'learner'), 'extra as learner');
      await ctl('members', 'promote', 'extra');
      await c.waitConfig((s) => s.some((x) => x.id === 'extra' && x.suffrage === 'voter'), 'extra promoted');
      await ctl('members', 'remove', 'extra');
      await c.waitConfig((s) => !s.some((x) => x.id === 'extra'), 'extra removed');
      await extra.stop();
      // Graceful shutdown of the leader: it transfers leadership before exiting.
      const current = await c.leader();
      assert.equal(await current.stop(), 0);
      const next = await c.leader(5_000);
      assert.notEqual(next.spec.id, current.spec.id);
      const afterShutdown = current.log.slice(current.log.indexOf('shutdown_requested'));
      assert.match(afterShutdown, /"role":"follower"[^\n]*raft_role_changed/, 'the leader stepped down before exiting');
    } finally { await c.stopAll(); }
  });
});
